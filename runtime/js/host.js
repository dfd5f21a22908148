// The host side of an isolate: takes requests from Rust, runs the tenant's handler, and hands
// the response back. One `serve` loop per isolate; each request runs concurrently with the rest.
import { core, internals, primordials } from "ext:core/mod.js";
import { appBindings } from "ext:edge_binding/registry.js";
import { fixedLengths, isEncodedByScript, unsizedBodies, webSocketOf } from "ext:edge_web/01_response.js";
import { connectWebSocket, listenerThrew, respondWebSocket } from "ext:edge_host/websocket.js";
import { currentInvocation, runAs } from "ext:edge_host/invocation.js";
import { QueueOutcome, ScheduledController, queueBatch } from "ext:edge_host/events.js";

const {
  ArrayPrototypeFilter,
  ArrayPrototypeJoin,
  ArrayPrototypePush,
  ObjectKeys,
  ObjectPrototypeIsPrototypeOf,
  PromisePrototype,
  PromisePrototypeThen,
  PromiseReject,
  PromiseResolve,
  SafeFinalizationRegistry,
  StringPrototypeIndexOf,
  StringPrototypeSlice,
  StringPrototypeSplit,
  StringPrototypeToLowerCase,
  Symbol,
  TypeError,
  TypedArrayPrototypeGetByteLength,
  Uint8Array,
  WeakSetPrototypeHas,
} = primordials;
const {
  op_edge_env,
  op_edge_wait_request,
  op_edge_take_request,
  op_edge_request_head,
  op_edge_request_cf,
  op_edge_request_body,
  op_edge_request_bytes,
  op_edge_ready,
  op_edge_fail,
  op_edge_respond_text,
  op_edge_respond_bytes,
  op_edge_respond_stream,
  op_edge_body_write,
  op_edge_body_close,
  op_edge_body_error,
  op_edge_wait_until,
  op_edge_wait_until_done,
  op_edge_unhandled_rejection,
  op_edge_uncaught,
  op_edge_subrequest,
  op_edge_event,
  op_edge_evaluated,
} = core.ops;

const requestMod = core.loadExtScript("ext:deno_fetch/23_request.js");
const responseMod = core.loadExtScript("ext:deno_fetch/23_response.js");
const bodyMod = core.loadExtScript("ext:deno_fetch/22_body.js");
const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const event = core.loadExtScript("ext:deno_web/02_event.js");

const ResponsePrototype = responseMod.ResponsePrototype;

/** Formats a thrown value for the log: the stack when there is one. */
function describe(err) {
  if (err !== null && typeof err === "object" && typeof err.stack === "string") {
    return err.stack;
  }
  try {
    return `Uncaught ${String(err)}`;
  } catch {
    return "Uncaught (unprintable value)";
  }
}

/** The `ctx` argument of a module handler (`ExecutionContext` in Workers). */
class ExecutionContext {
  #id;
  constructor(id) {
    this.#id = id;
  }
  waitUntil(promise) {
    const id = this.#id;
    op_edge_wait_until(id);
    PromisePrototypeThen(
      PromiseResolve(promise),
      () => op_edge_wait_until_done(id, ""),
      (err) => op_edge_wait_until_done(id, describe(err)),
    );
  }
  passThroughOnException() {
    // There is no origin to fall through to on edge; accepted for compatibility.
  }
  get props() {
    return {};
  }
}

const _respondWith = Symbol("respondWith");

/** The event of the service-worker syntax: `addEventListener("fetch", (e) => e.respondWith(...))`. */
class FetchEvent extends event.Event {
  #ctx;
  #request;
  constructor(type, init) {
    super(type);
    this.#request = init.request;
    this.#ctx = init.ctx;
    this[_respondWith] = null;
  }
  get request() {
    return this.#request;
  }
  respondWith(response) {
    if (this[_respondWith] !== null) {
      throw new TypeError("respondWith() was already called for this event");
    }
    // A Response or a promise of one, as on Workers; anything else (a thenable that may never
    // settle included) fails the request at once instead of holding it to the wall limit.
    this[_respondWith] =
      ObjectPrototypeIsPrototypeOf(PromisePrototype, response) ||
        ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)
        ? PromiseResolve(response)
        : PromiseReject(
          new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'."),
        );
    this.stopImmediatePropagation();
  }
  waitUntil(promise) {
    this.#ctx.waitUntil(promise);
  }
  passThroughOnException() {
    this.#ctx.passThroughOnException();
  }
}
globalThis.FetchEvent = FetchEvent;

/**
 * Headers cross between Rust and JS as one string, `name\nvalue\n` per header (see
 * runtime/src/isolate/header_block.rs): one conversion instead of one per name and value.
 */
function splitHeaders(block) {
  const parts = StringPrototypeSplit(block, "\n");
  const list = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    ArrayPrototypePush(list, [parts[i], parts[i + 1]]);
  }
  return list;
}

/** Joined by concatenation: V8 inlines `+` on strings in optimized code, where the primordial
 * `push`/`join` pair was two builtin calls per header (about 3% of a hello-world request's CPU
 * on the isolate thread, `perf`). The op flattens the result when it reads it. */
function joinHeaders(list) {
  let block = "";
  for (let i = 0; i < list.length; i++) {
    const header = list[i];
    block += header[0] + "\n" + header[1] + "\n";
  }
  return block;
}

/** Stands in for the lazy URL thunk of deno_fetch's inner requests; never called, because an
 * incoming request's URL is loaded (and so already "processed") before anything reads it. */
function urlKnown() {
  throw new TypeError("unreachable: the URL of an incoming request is known");
}

/**
 * The inner request behind an incoming `Request`: the shape deno_fetch's `newInnerRequest`
 * returns (the same fields, accessors and methods), on a shared prototype, and lazy: it holds
 * only the invocation id until the script reads the request. The method, URL and headers come
 * from the host in one string on first use (`op_edge_request_head`: `method \n url \n
 * header-block`, see runtime/src/isolate/incoming.rs), the body when it is first touched.
 */
class IncomingInnerRequest {
  constructor(id) {
    this.id = id;
    this.methodInner = null;
    this.urlInner = null;
    this.headerBlock = "";
    this.headerListInner = null;
    this.urlListInner = null;
    this.urlListProcessedInner = null;
    this.bodyInner = undefined;
    this.redirectMode = "follow";
    this.redirectCount = 0;
    this.clientRid = null;
    this.blobUrlEntry = null;
    this.cfInner = undefined;
  }
  /** `request.cf` (04_request.js reads it), from the host on first use. */
  get cf() {
    if (this.cfInner === undefined) this.cfInner = op_edge_request_cf(this.id) ?? null;
    return this.cfInner ?? undefined;
  }
  loadHead() {
    if (this.urlInner !== null) return;
    const head = op_edge_request_head(this.id);
    const a = StringPrototypeIndexOf(head, "\n");
    const b = StringPrototypeIndexOf(head, "\n", a + 1);
    if (this.methodInner === null) this.methodInner = StringPrototypeSlice(head, 0, a);
    this.urlInner = StringPrototypeSlice(head, a + 1, b);
    if (this.headerListInner === null) this.headerBlock = StringPrototypeSlice(head, b + 1);
  }
  get method() {
    if (this.methodInner === null) this.loadHead();
    return this.methodInner;
  }
  set method(value) {
    this.loadHead();
    this.methodInner = value;
  }
  get headerList() {
    if (this.headerListInner === null) {
      this.loadHead();
      this.headerListInner = splitHeaders(this.headerBlock);
      this.headerBlock = "";
    }
    return this.headerListInner;
  }
  set headerList(value) {
    this.loadHead();
    this.headerListInner = value;
  }
  get urlList() {
    if (this.urlListInner === null) {
      this.loadHead();
      this.urlListInner = [urlKnown];
    }
    return this.urlListInner;
  }
  set urlList(value) {
    this.urlListInner = value;
  }
  get urlListProcessed() {
    if (this.urlListProcessedInner === null) {
      this.loadHead();
      this.urlListProcessedInner = [this.urlInner];
    }
    return this.urlListProcessedInner;
  }
  set urlListProcessed(value) {
    this.urlListProcessedInner = value;
  }
  get body() {
    if (this.bodyInner === undefined) this.bodyInner = takeBody(this.id);
    return this.bodyInner;
  }
  set body(value) {
    this.bodyInner = value;
  }
  url() {
    return this.urlListProcessed[0];
  }
  currentUrl() {
    const processed = this.urlListProcessed;
    const last = this.urlList.length - 1;
    if (processed[last] === undefined) {
      processed[last] = this.urlList[last]();
    }
    return processed[last];
  }
}

/** The body of incoming request `id`, as deno_fetch's `InnerBody` (or null for none). */
function takeBody(id) {
  const kind = op_edge_request_body(id);
  if (kind === "") return null;
  if (kind === "b") {
    // A small body that had fully arrived: no stream unless the script asks for one.
    return new bodyMod.InnerBody({ body: op_edge_request_bytes(id), consumed: false });
  }
  const rid = +StringPrototypeSlice(kind, 1);
  return new bodyMod.InnerBody(requestBodyStream(rid));
}

/** How much of a streamed request body one read takes into the isolate. */
const BODY_CHUNK_BYTES = 64 * 1024;

/** Closes the body resources of streams the script dropped without reading to the end. */
const bodyResources = new SafeFinalizationRegistry((rid) => core.tryClose(rid));

/**
 * A streamed request body as a byte stream that reads resource `rid` into buffers the script's
 * isolate allocates. Unlike deno_web's `readableStreamForRid`, it is not "resource-backed", so
 * `arrayBuffer()`, `text()` and the like collect it chunk by chunk in the isolate rather than
 * in one op outside it: every byte of the body is then counted against the isolate's memory
 * limit as it arrives, and the host never holds more than one chunk of it.
 */
function requestBodyStream(rid) {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    bodyResources.unregister(token);
    core.tryClose(rid);
  };
  const token = { rid };
  const stream = new streams.ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: BODY_CHUNK_BYTES,
    async pull(controller) {
      const request = controller.byobRequest;
      try {
        const read = await core.read(rid, request.view);
        if (read === 0) {
          close();
          controller.close();
          request.respond(0);
        } else {
          request.respond(read);
        }
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel() {
      close();
    },
  });
  bodyResources.register(stream, rid, token);
  return stream;
}

async function pump(id, stream) {
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!ObjectPrototypeIsPrototypeOf(Uint8Array.prototype, value)) {
        throw new TypeError("response body chunks must be Uint8Array");
      }
      if (TypedArrayPrototypeGetByteLength(value) === 0) continue;
      if (!(await op_edge_body_write(id, value))) {
        // The client went away: stop producing.
        await reader.cancel();
        return;
      }
    }
    op_edge_body_close(id);
  } catch (err) {
    op_edge_body_error(id, describe(err));
    try {
      await reader.cancel(err);
    } catch {
      // Already errored.
    }
  }
}

/** Whether a header list (`[name, value]` pairs) has `name` (lower case). */
function hasHeader(list, name) {
  for (let i = 0; i < list.length; i++) {
    if (StringPrototypeToLowerCase(list[i][0]) === name) return true;
  }
  return false;
}

/** A header list (`[name, value]` pairs) without `name` (lower case). */
function withoutHeader(list, name) {
  return ArrayPrototypeFilter(list, (header) => StringPrototypeToLowerCase(header[0]) !== name);
}

function respond(id, response) {
  if (!ObjectPrototypeIsPrototypeOf(ResponsePrototype, response)) {
    op_edge_fail(id, `TypeError: the fetch handler returned ${typeof response}, not a Response`);
    return;
  }
  const inner = responseMod.toInnerResponse(response);
  if (inner.type === "error") {
    op_edge_fail(id, "TypeError: the fetch handler returned Response.error()");
    return;
  }
  const ws = webSocketOf(response);
  if (ws !== null) {
    // A `101`: the connection becomes the other end of the pair (websocket.js).
    try {
      respondWebSocket(id, joinHeaders(inner.headerList), ws);
    } catch (err) {
      op_edge_fail(id, describe(err));
    }
    return;
  }
  const body = inner.body;
  const headers = joinHeaders(inner.headerList);
  if (body === null) {
    op_edge_respond_text(id, inner.status, headers, "", true);
    return;
  }
  // Sent as it is, or encoded by the runtime to match its Content-Encoding (01_response.js).
  const manual = isEncodedByScript(response);
  const sos = body.streamOrStatic;
  if (!ObjectPrototypeIsPrototypeOf(streams.ReadableStreamPrototype, sos)) {
    if (sos.consumed) {
      op_edge_fail(id, "TypeError: the response body was already used");
      return;
    }
    sos.consumed = true;
    if (typeof sos.body === "string") {
      op_edge_respond_text(id, inner.status, headers, sos.body, manual);
    } else {
      op_edge_respond_bytes(id, inner.status, headers, sos.body, manual);
    }
    return;
  }
  if (sos.locked || streams.isReadableStreamDisturbed(sos)) {
    op_edge_fail(id, "TypeError: the response body stream is locked or already read");
    return;
  }
  // A FixedLengthStream's length is the response's Content-Length, unless it has one; a body
  // whose length the headers cannot know is sent without one (01_response.js).
  const length = fixedLengths.get(sos);
  const sized = WeakSetPrototypeHas(unsizedBodies, sos)
    ? joinHeaders(withoutHeader(inner.headerList, "content-length"))
    : length !== undefined && !hasHeader(inner.headerList, "content-length")
    ? `${headers}content-length\n${length}\n`
    : headers;
  op_edge_respond_stream(id, inner.status, sized, manual);
  pump(id, sos);
}

/** Runs the handler on incoming request `id`. */
function invoke(handler, env, id) {
  const request = requestMod.fromInnerRequest(new IncomingInnerRequest(id), "immutable");
  const ctx = new ExecutionContext(id);
  let result;
  // Everything the handler starts (continuations, timers, fetches) carries the invocation id
  // as its async context, so limits are counted against the right invocation.
  try {
    result = runAs(id, () => handler(request, env, ctx));
  } catch (err) {
    op_edge_fail(id, describe(err));
    return;
  }
  if (ObjectPrototypeIsPrototypeOf(ResponsePrototype, result)) {
    // A handler that answered synchronously: no promise round trip.
    respond(id, result);
    return;
  }
  PromisePrototypeThen(
    PromiseResolve(result),
    (response) => respond(id, response),
    (err) => op_edge_fail(id, describe(err)),
  );
}

/** The handler of the service-worker syntax: dispatch a FetchEvent on the global scope. */
function serviceWorkerHandler(request, _env, ctx) {
  const ev = new FetchEvent("fetch", { request, ctx });
  globalThis.dispatchEvent(ev);
  if (ev[_respondWith] === null) {
    throw new TypeError("no fetch event listener called respondWith()");
  }
  return ev[_respondWith];
}

function pickHandler(ns) {
  const def = ns.default;
  if (def !== undefined && def !== null && typeof def.fetch === "function") {
    return (request, env, ctx) => def.fetch(request, env, ctx);
  }
  if (event.listenerCount(globalThis, "fetch") > 0) {
    return serviceWorkerHandler;
  }
  if (def !== undefined && def !== null) {
    if (typeof def.scheduled === "function" || typeof def.queue === "function") {
      // A Worker with only other handlers (a cron job, a consumer) loads; a request to it
      // fails clearly.
      return noFetchHandler;
    }
    throw new TypeError(
      "the module's default export has no fetch() method; export default { async fetch(request, env, ctx) { ... } }",
    );
  }
  throw new TypeError(
    "the module registers no fetch handler: export default { fetch } or addEventListener(\"fetch\", ...)",
  );
}

function noFetchHandler() {
  throw new TypeError("the module's default export has no fetch() method to answer a request");
}

/** The handlers of events other than requests, by event type: `export default { scheduled, queue }`. */
function pickEventHandlers(ns) {
  const def = ns.default;
  const of = (name) =>
    def !== undefined && def !== null && typeof def[name] === "function"
      ? (...args) => def[name](...args)
      : null;
  return { scheduled: of("scheduled"), queue: of("queue") };
}

/** Runs the handler of event `id` (not a request): it answers once the handler has settled. */
function runEvent(handlers, env, id) {
  const ev = op_edge_event(id);
  const ctx = new ExecutionContext(id);
  // A queue handler's decisions are reported whether it settles or throws.
  const outcome = ev !== null && ev.type === "queue" ? new QueueOutcome() : null;
  const done = () => op_edge_respond_text(id, 200, "", outcome === null ? "" : outcome.report(), true);
  const failed = (err) => {
    if (outcome === null) {
      op_edge_fail(id, describe(err));
      return;
    }
    let text;
    try {
      text = describe(err);
    } catch {
      text = "Uncaught (unprintable value)";
    }
    op_edge_respond_text(id, 500, "", outcome.report(text), true);
  };
  let result;
  try {
    result = runAs(id, () => {
      if (ev === null) throw new TypeError("an event of an unknown kind");
      const handler = handlers[ev.type];
      if (handler === null || handler === undefined) {
        throw new TypeError(`the module's default export has no ${ev.type}() method`);
      }
      const arg = outcome === null
        ? new ScheduledController(ev.cron, ev.scheduledTime)
        : queueBatch(ev, id, outcome);
      return handler(arg, env, ctx);
    });
  } catch (err) {
    failed(err);
    return;
  }
  PromisePrototypeThen(PromiseResolve(result), done, failed);
}

/** An id from `op_edge_take_request` with this bit set is an event other than a request. */
const EVENT_BIT = 1 << 30;

/** How many queued requests the host loop starts before it awaits again. */
const REQUESTS_PER_BATCH = 64;

/** Whether a `fetch(input, init)` asks for a WebSocket (`Upgrade: websocket`). */
function asksForWebSocket(input, init) {
  let headers;
  if (init !== undefined && init !== null && init.headers !== undefined) {
    headers = new Headers(init.headers);
  } else if (ObjectPrototypeIsPrototypeOf(requestMod.RequestPrototype, input)) {
    headers = input.headers;
  } else {
    return false;
  }
  const upgrade = headers.get("upgrade");
  return upgrade !== null && StringPrototypeToLowerCase(upgrade) === "websocket";
}

/**
 * Makes the global scope the app's, before any of its code runs. `nodejs`: null, or for an
 * app with `nodejs_compat`, what its `process.env` holds and whether `Buffer` and `process`
 * are globals.
 */
function prepare(nodejs) {
  // App code sees a Worker's global scope, not the engine's internals: no `Deno.core.ops`
  // (raw ops), no `__bootstrap`, no `Deno` (libraries take one to mean "running on Deno").
  // (Lazily loaded extension scripts still get a captured view.)
  delete globalThis.Deno;
  delete globalThis.__bootstrap;
  // The quickjs engine adds a `gc()`; a tenant does not get to run the collector at will.
  // (Its `__v8x*` helpers stay: the engine looks them up on the global object itself. No
  // limit depends on anything a script can reach through them.)
  delete globalThis.gc;
  // `Buffer` and `process` (see bindings/nodejs/js/00_setup.js).
  if (nodejs !== null) internals.edgeNodejs.install(nodejs.env, nodejs.globals, nodejs.builtins);
}

globalThis[Symbol.for("edge.prepare")] = prepare;

/** Runs the isolate: import the tenant's main module, then serve requests until told to stop. */
async function serve(mainUrl) {
  // Outbound fetches count against the calling invocation's subrequest limit.
  const innerFetch = globalThis.fetch;
  globalThis.fetch = function fetch(input, init = undefined) {
    // Any context counts somewhere: one naming no invocation in flight (a script may reset
    // it) goes to the isolate's orphan allowance.
    const id = currentInvocation();
    const invocation = typeof id === "number" ? id >>> 0 : 0xffffffff;
    if (!op_edge_subrequest(invocation)) {
      return PromiseReject(new Error("Too many subrequests: this invocation reached its subrequest limit"));
    }
    // `Upgrade: websocket`: an outbound WebSocket (websocket.js), not an HTTP exchange.
    if (asksForWebSocket(input, init)) {
      try {
        return connectWebSocket(new requestMod.Request(input, init), invocation);
      } catch (err) {
        return PromiseReject(err);
      }
    }
    return innerFetch(input, init);
  };
  // A Worker's stray rejected promise is logged, not fatal to the isolate.
  core.setUnhandledPromiseRejectionHandler((_promise, reason) => {
    op_edge_unhandled_rejection(describe(reason));
    return true;
  });
  // So is one thrown by a timer callback or a microtask queued with queueMicrotask (the
  // engine's default would end the event loop, and the isolate with it).
  core.setReportExceptionCallback((error) => {
    op_edge_uncaught(describe(error));
  });
  // And one thrown by an event listener (a WebSocket's, say), which the web's rules report
  // as an `error` event on the global scope.
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    op_edge_uncaught(describe(e.error ?? e.message));
    // A WebSocket whose listener threw loses its connection, as on Workers.
    listenerThrew();
  });
  const ns = await import(mainUrl);
  op_edge_evaluated();
  const handler = pickHandler(ns);
  const eventHandlers = pickEventHandlers(ns);
  const env = op_edge_env();
  for (const [name, binding] of appBindings()) env[name] = binding;
  if (handler === serviceWorkerHandler) {
    // The service-worker syntax has no `env`: as on Workers, vars and bindings are globals.
    for (const name of ObjectKeys(env)) globalThis[name] = env[name];
  }
  // Which handlers the module exports, for `edge check` (a handler nothing triggers).
  const exported = ArrayPrototypeJoin(
    ArrayPrototypeFilter(
      ["fetch", "scheduled", "queue"],
      (name) => ns.default != null && typeof ns.default[name] === "function",
    ),
    ",",
  );
  op_edge_ready(handler === serviceWorkerHandler ? "fetch" : exported);
  // One promise per batch of queued requests, not per request; a batch is bounded so the
  // microtasks of the requests it started run before the next batch is taken.
  while (await op_edge_wait_request()) {
    for (let n = 0; n < REQUESTS_PER_BATCH; n++) {
      const id = op_edge_take_request();
      if (id < 0) break;
      if (id >= EVENT_BIT) runEvent(eventHandlers, env, id - EVENT_BIT);
      else invoke(handler, env, id);
    }
  }
}

globalThis[Symbol.for("edge.serve")] = serve;

/**
 * Runs the request and response machinery once, with no host op, while the startup snapshot is
 * made: the functions it calls are compiled then, and the snapshot keeps their code, so an
 * isolate's first request does not pay for compiling them (about 1.5 ms on V8).
 */
function warmUp() {
  for (let i = 0; i < 2; i++) {
    const inner = new IncomingInnerRequest(-1);
    inner.methodInner = "GET";
    inner.urlInner = "http://warm.up/path?q=1";
    inner.headerBlock = "host\nwarm.up\naccept\n*/*\n";
    const request = requestMod.fromInnerRequest(inner, "immutable");
    void request.method;
    void request.url;
    void request.headers.get("host");
    void new URL(request.url).pathname;
    new ExecutionContext(-1);
    for (const response of [new Response("warm"), Response.json({ warm: true }), new Response(null, { status: 204 })]) {
      const innerResponse = responseMod.toInnerResponse(response);
      joinHeaders(innerResponse.headerList);
      if (innerResponse.body !== null) void innerResponse.body.streamOrStatic;
    }
  }
}
globalThis[Symbol.for("edge.warmup")] = warmUp;
