// The global scope of an edge isolate: what a Cloudflare Worker finds on `globalThis`.
// Every API comes from Deno's web extensions; this module only wires them onto the global.
import { core, internals, primordials } from "ext:core/mod.js";
import { Response, fixedLengths } from "ext:edge_web/01_response.js";
import { HTMLRewriter } from "ext:edge_web/03_html_rewriter.js";
import { Request, withWorkersUrlMessage } from "ext:edge_web/04_request.js";

const {
  ArrayBufferIsView,
  ArrayPrototypeIncludes,
  NumberIsSafeInteger,
  ObjectDefineProperties,
  ObjectDefineProperty,
  ObjectFreeze,
  ObjectGetOwnPropertyDescriptor,
  ObjectSetPrototypeOf,
  Promise,
  PromisePrototypeCatch,
  PromisePrototypeThen,
  SafeFinalizationRegistry,
  SafeWeakMap,
  TypedArrayPrototypeSlice,
  WeakMapPrototypeGet,
  WeakMapPrototypeSet,
  PromiseReject,
  ReflectApply,
  RegExpPrototypeExec,
  SafeRegExp,
  String,
  TypeError,
  StringPrototypeToUpperCase,
  Uint8Array,
} = primordials;
const { op_edge_console, op_edge_digest_new, op_edge_digest_update, op_edge_digest_finish } =
  core.ops;

// deno_fetch traces outbound requests through deno_telemetry when OpenTelemetry is on. edge
// traces on the Rust side instead, so fetch gets telemetry that is always off (it then never
// calls the span functions) and deno_telemetry is not shipped.
const noop = () => {};
internals.__telemetry ??= ObjectFreeze({
  TRACING_ENABLED: false,
  PROPAGATORS: ObjectFreeze([]),
  DID_NOT_ENTER: ObjectFreeze({}),
  builtinTracer: noop,
  ContextManager: ObjectFreeze({ active: noop }),
  enterSpan: noop,
  exitSpan: noop,
});
internals.__telemetryUtil ??= ObjectFreeze({
  updateSpanFromClientResponse: noop,
  updateSpanFromError: noop,
  updateSpanFromRequest: noop,
});

const webidl = core.loadExtScript("ext:deno_webidl/00_webidl.js");
const url = core.loadExtScript("ext:deno_web/00_url.js");
const console = core.loadExtScript("ext:deno_web/01_console.js");
const { DOMException } = core.loadExtScript("ext:deno_web/01_dom_exception.js");
const urlPattern = core.loadExtScript("ext:deno_web/01_urlpattern.js");
const event = core.loadExtScript("ext:deno_web/02_event.js");
const timers = core.loadExtScript("ext:deno_web/02_timers.js");
const abortSignal = core.loadExtScript("ext:deno_web/03_abort_signal.js");
const base64 = core.loadExtScript("ext:deno_web/05_base64.js");
const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const encoding = core.loadExtScript("ext:deno_web/08_text_encoding.js");
const file = core.loadExtScript("ext:deno_web/09_file.js");
const fileReader = core.loadExtScript("ext:deno_web/10_filereader.js");
const messagePort = core.loadExtScript("ext:deno_web/13_message_port.js");
const compression = core.loadExtScript("ext:deno_web/14_compression.js");
const performance = core.loadExtScript("ext:deno_web/15_performance.js");
const crypto = core.loadExtScript("ext:deno_crypto/00_crypto.js");
const headers = core.loadExtScript("ext:deno_fetch/20_headers.js");
const formData = core.loadExtScript("ext:deno_fetch/21_formdata.js");
const request = core.loadExtScript("ext:deno_fetch/23_request.js");
const response = core.loadExtScript("ext:deno_fetch/23_response.js");
const fetch = core.loadExtScript("ext:deno_fetch/26_fetch.js");

// deno_fetch refuses a private address with Deno's advice ("run again with the --allow-net
// flag"), which means nothing here: the refusal is reworded to name edge's own setting.
const denoFetch = fetch.fetch;
const DENIED_HOST = new SafeRegExp('"([^"]*)"');
function reworded(err) {
  if (err === null || typeof err !== "object" || err.name !== "NotCapable") return err;
  const host = RegExpPrototypeExec(DENIED_HOST, String(err.message))?.[1] ?? "that address";
  return new TypeError(
    `fetch to ${host} refused: apps reach only public addresses unless their edge.toml has ` +
      "[outbound] allow_private = true (and, on edge serve, the node grants it with " +
      "--allow-private-network NAME)",
  );
}
// Named `fetch`, with the same length, as the function it stands for.
const edgeFetch = {
  fetch(input, init = undefined) {
    return PromisePrototypeCatch(ReflectApply(denoFetch, this, [input, init]), (err) => {
      throw withWorkersUrlMessage(reworded(err));
    });
  },
}.fetch;

const nonEnum = core.propNonEnumerable;
const writable = core.propWritable;

// Workers' `scheduler.wait(ms, { signal })`: a promise that resolves after `ms`, as an awaitable
// setTimeout; an aborted signal rejects it with the signal's reason.
const { setTimeout, clearTimeout } = timers;
const scheduler = ObjectFreeze({
  wait(delay, options = undefined) {
    const signal = options?.signal;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(id);
        reject(signal.reason);
      };
      const id = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, delay);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
});

// A chunk written to a byte-only transform stream, as bytes; anything else is Workers' error.
function byteChunk(chunk) {
  if (ArrayBufferIsView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  try {
    return new Uint8Array(webidl.converters.ArrayBuffer(chunk));
  } catch {
    throw new TypeError(
      "This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.",
    );
  }
}

/** The byte-stream readable side of each byte-only transform stream, made on first use. */
const byteReadables = new SafeWeakMap();

/**
 * A transform stream of bytes whose readable side is a byte stream (`type: "bytes"`), as
 * Workers' identity streams are: a BYOB reader (`getReader({ mode: "byob" })`) fills the views
 * it is given. The chunks written are copied once, so the writer's buffers stay its own.
 */
class ByteTransformStream extends streams.TransformStream {
  get readable() {
    let readable = WeakMapPrototypeGet(byteReadables, this);
    if (readable === undefined) {
      const reader = super.readable.getReader();
      readable = new streams.ReadableStream({
        type: "bytes",
        async pull(controller) {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) {
              controller.close();
              controller.byobRequest?.respond(0);
              return;
            }
            // A byte stream takes no empty chunk: an empty write passes nothing on.
            if (value.byteLength === 0) continue;
            controller.enqueue(TypedArrayPrototypeSlice(value));
            return;
          }
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      });
      WeakMapPrototypeSet(byteReadables, this, readable);
    }
    return readable;
  }
}

/** Workers' `IdentityTransformStream`: bytes written come out unchanged. */
class IdentityTransformStream extends ByteTransformStream {
  constructor() {
    super({
      transform(chunk, controller) {
        controller.enqueue(byteChunk(chunk));
      },
    });
  }
}

/**
 * Workers' `FixedLengthStream(length)`: an identity stream of exactly `length` bytes (more, or
 * fewer at close, is an error), whose readable side as a response body sets Content-Length.
 */
class FixedLengthStream extends ByteTransformStream {
  constructor(expectedLength) {
    const expected = typeof expectedLength === "bigint" ? Number(expectedLength) : expectedLength;
    if (!NumberIsSafeInteger(expected) || expected < 0) {
      throw new TypeError("FixedLengthStream requires a non-negative integer expected length.");
    }
    let seen = 0;
    super({
      transform(chunk, controller) {
        const bytes = byteChunk(chunk);
        seen += bytes.byteLength;
        if (seen > expected) {
          throw new TypeError("Attempt to write too many bytes through a FixedLengthStream.");
        }
        controller.enqueue(bytes);
      },
      flush() {
        if (seen < expected) {
          throw new TypeError("FixedLengthStream did not see all expected bytes before close().");
        }
      },
    });
    fixedLengths.set(this.readable, expected);
  }
}

/**
 * Workers' `crypto.DigestStream(algorithm)`: a WritableStream of bytes whose `digest` promise
 * gives the hash (an ArrayBuffer) of everything written once it closes. MD5, SHA-1, SHA-256,
 * SHA-384, SHA-512; the hash is kept as it goes (edge_web's digest ops), never the data.
 */
const DIGESTS = ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];
// A stream dropped unclosed gives its hash state back when it is collected.
const abandonedDigests = new SafeFinalizationRegistry((rid) => {
  try {
    op_edge_digest_finish(rid);
  } catch {
    // Already finished.
  }
});
class DigestStream extends streams.WritableStream {
  #digest;
  constructor(algorithm) {
    const name = String(typeof algorithm === "string" ? algorithm : algorithm?.name);
    if (!ArrayPrototypeIncludes(DIGESTS, StringPrototypeToUpperCase(name))) {
      throw new DOMException("Unrecognized name.", "NotSupportedError");
    }
    const rid = op_edge_digest_new(name);
    let resolve;
    let reject;
    const digest = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A rejection (an aborted stream) is the reader's business, not an unhandled one.
    PromisePrototypeThen(digest, undefined, noop);
    const token = {};
    let open = true;
    const end = () => {
      if (!open) return null;
      open = false;
      abandonedDigests.unregister(token);
      return op_edge_digest_finish(rid);
    };
    super({
      write(chunk) {
        try {
          op_edge_digest_update(rid, byteChunk(chunk));
        } catch (err) {
          // The stream errors (no close or abort follows): settle the digest now.
          end();
          reject(err);
          throw err;
        }
      },
      close() {
        resolve(end().buffer);
      },
      abort(reason) {
        end();
        reject(reason);
      },
    });
    abandonedDigests.register(this, rid, token);
    this.#digest = digest;
  }
  get digest() {
    return this.#digest;
  }
}

// The bytes of an ArrayBuffer or a view of one, for `timingSafeEqual`.
function bufferBytes(value, which) {
  if (ArrayBufferIsView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  try {
    return new Uint8Array(webidl.converters.ArrayBuffer(value, "timingSafeEqual", which));
  } catch {
    throw new TypeError(
      `Failed to execute 'timingSafeEqual' on 'SubtleCrypto': ${which} is not an ArrayBuffer or ArrayBufferView.`,
    );
  }
}

const scope = {
  AbortController: nonEnum(abortSignal.AbortController),
  AbortSignal: nonEnum(abortSignal.AbortSignal),
  Blob: nonEnum(file.Blob),
  ByteLengthQueuingStrategy: nonEnum(streams.ByteLengthQueuingStrategy),
  CompressionStream: nonEnum(compression.CompressionStream),
  CountQueuingStrategy: nonEnum(streams.CountQueuingStrategy),
  CryptoKey: nonEnum(crypto.CryptoKey),
  Crypto: nonEnum(crypto.Crypto),
  CustomEvent: nonEnum(event.CustomEvent),
  DecompressionStream: nonEnum(compression.DecompressionStream),
  DOMException: nonEnum(DOMException),
  ErrorEvent: nonEnum(event.ErrorEvent),
  Event: nonEnum(event.Event),
  EventTarget: nonEnum(event.EventTarget),
  File: nonEnum(file.File),
  FileReader: nonEnum(fileReader.FileReader),
  FixedLengthStream: nonEnum(FixedLengthStream),
  FormData: nonEnum(formData.FormData),
  Headers: nonEnum(headers.Headers),
  HTMLRewriter: nonEnum(HTMLRewriter),
  IdentityTransformStream: nonEnum(IdentityTransformStream),
  MessageChannel: nonEnum(messagePort.MessageChannel),
  MessageEvent: nonEnum(event.MessageEvent),
  MessagePort: nonEnum(messagePort.MessagePort),
  Performance: nonEnum(performance.Performance),
  PerformanceEntry: nonEnum(performance.PerformanceEntry),
  PerformanceMark: nonEnum(performance.PerformanceMark),
  PerformanceMeasure: nonEnum(performance.PerformanceMeasure),
  PromiseRejectionEvent: nonEnum(event.PromiseRejectionEvent),
  ReadableByteStreamController: nonEnum(streams.ReadableByteStreamController),
  ReadableStream: nonEnum(streams.ReadableStream),
  ReadableStreamBYOBReader: nonEnum(streams.ReadableStreamBYOBReader),
  ReadableStreamBYOBRequest: nonEnum(streams.ReadableStreamBYOBRequest),
  ReadableStreamDefaultController: nonEnum(streams.ReadableStreamDefaultController),
  ReadableStreamDefaultReader: nonEnum(streams.ReadableStreamDefaultReader),
  // deno_fetch's class, keeping Workers' `cf` (04_request.js).
  Request: nonEnum(Request),
  // deno_fetch's class, reading Workers' `encodeBody` (01_response.js).
  Response: nonEnum(Response),
  SubtleCrypto: nonEnum(crypto.SubtleCrypto),
  TextDecoder: nonEnum(encoding.TextDecoder),
  TextDecoderStream: nonEnum(encoding.TextDecoderStream),
  TextEncoder: nonEnum(encoding.TextEncoder),
  TextEncoderStream: nonEnum(encoding.TextEncoderStream),
  TransformStream: nonEnum(streams.TransformStream),
  TransformStreamDefaultController: nonEnum(streams.TransformStreamDefaultController),
  URL: nonEnum(url.URL),
  URLPattern: nonEnum(urlPattern.URLPattern),
  URLSearchParams: nonEnum(url.URLSearchParams),
  WritableStream: nonEnum(streams.WritableStream),
  WritableStreamDefaultController: nonEnum(streams.WritableStreamDefaultController),
  WritableStreamDefaultWriter: nonEnum(streams.WritableStreamDefaultWriter),
  atob: writable(base64.atob),
  btoa: writable(base64.btoa),
  clearInterval: writable(timers.clearInterval),
  clearTimeout: writable(timers.clearTimeout),
  console: nonEnum(new console.Console((msg, level) => op_edge_console(msg, level))),
  // A getter: the Crypto object is a native (cppgc) object, created per isolate on first use,
  // never in the snapshot.
  crypto: core.propGetterOnly(() => crypto.crypto),
  fetch: writable(edgeFetch),
  // What libraries sniff to tell they run on Workers.
  navigator: core.propReadOnly({ userAgent: "Cloudflare-Workers" }),
  performance: writable(performance.performance),
  reportError: writable(event.reportError),
  scheduler: writable(scheduler),
  self: core.propGetterOnly(() => globalThis),
  setInterval: writable(timers.setInterval),
  setTimeout: writable(timers.setTimeout),
  structuredClone: writable(messagePort.structuredClone),
  [webidl.brand]: nonEnum(webidl.brand),
};

ObjectDefineProperties(globalThis, scope);

ObjectDefineProperty(crypto.Crypto.prototype, "DigestStream", {
  __proto__: null,
  value: DigestStream,
  writable: true,
  enumerable: false,
  configurable: true,
});

// Workers' `crypto.subtle.timingSafeEqual(a, b)`: whether two byte buffers of one length are
// equal, in time that depends on their length only; buffers of different lengths throw.
ObjectDefineProperty(crypto.SubtleCrypto.prototype, "timingSafeEqual", {
  __proto__: null,
  value: function timingSafeEqual(a, b) {
    const x = bufferBytes(a, "Argument 1");
    const y = bufferBytes(b, "Argument 2");
    if (x.byteLength !== y.byteLength) {
      throw new TypeError("Input buffers must have the same byte length.");
    }
    let diff = 0;
    for (let i = 0; i < x.byteLength; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  },
  writable: true,
  enumerable: false,
  configurable: true,
});

// PBKDF2 iterations are capped as Workers caps them: a derivation runs off the isolate's thread,
// where it cannot be stopped once started, so one call must stay small. The algorithm is read
// once (a copy is passed on), so a getter cannot show the check one count and the work another.
const MAX_PBKDF2_ITERATIONS = 100000;
const subtle = crypto.SubtleCrypto.prototype;
for (const method of ["deriveBits", "deriveKey"]) {
  const inner = subtle[method];
  const wrapped = {
    [method](algorithm, ...rest) {
      try {
        if (
          algorithm !== null && typeof algorithm === "object" &&
          typeof algorithm.name === "string" &&
          StringPrototypeToUpperCase(algorithm.name) === "PBKDF2"
        ) {
          // A plain copy, its count a plain number: neither a getter nor a `valueOf` can show
          // the check one count and the derivation another.
          algorithm = { ...algorithm };
          if (algorithm.iterations !== undefined) algorithm.iterations = +algorithm.iterations;
          if (algorithm.iterations > MAX_PBKDF2_ITERATIONS) {
            throw new DOMException(
              `Pbkdf2 failed: iteration counts above ${MAX_PBKDF2_ITERATIONS} are not supported (requested ${algorithm.iterations})`,
              "NotSupportedError",
            );
          }
        }
      } catch (err) {
        // As the method itself would: a rejected promise, never a synchronous throw.
        return PromiseReject(err);
      }
      return ReflectApply(inner, this, [algorithm, ...rest]);
    },
  }[method];
  // The same flags as the method it stands for.
  ObjectDefineProperty(subtle, method, {
    __proto__: null,
    ...ObjectGetOwnPropertyDescriptor(subtle, method),
    value: wrapped,
  });
}

// A Worker's thread never blocks: `Atomics.wait` throws, as on a browser's main thread. A
// blocked wait cannot be interrupted by the watchdog, so it would outlast every limit.
// (`Atomics.waitAsync` and `Atomics.notify` stay.)
ObjectDefineProperty(globalThis.Atomics, "wait", {
  __proto__: null,
  value: function wait() {
    throw new TypeError("Atomics.wait cannot be called in this context");
  },
  writable: true,
  enumerable: false,
  configurable: true,
});

// The service-worker syntax (`addEventListener("fetch", ...)`) needs the global to be an
// EventTarget, as it is in a Worker.
ObjectSetPrototypeOf(globalThis, event.EventTarget.prototype);
event.setEventTargetData(globalThis);
event.saveGlobalThisReference(globalThis);

