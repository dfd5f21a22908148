// env.MY_KV: a Workers KVNamespace over the edge_kv ops. Argument conversion and the value
// types live here; every KV rule (key, value, metadata, expiration, limit, cursor) is checked
// in Rust, so JavaScript and wasm apps get the same errors.
import { core, primordials } from "ext:core/mod.js";
import { defineBinding } from "ext:edge_binding/registry.js";

const {
  ArrayBufferIsView,
  ArrayBufferPrototype,
  ArrayBufferPrototypeGetByteLength,
  ArrayBufferPrototypeSlice,
  ArrayIsArray,
  ArrayPrototypeIncludes,
  ArrayPrototypeMap,
  ArrayPrototypePush,
  JSONParse,
  JSONStringify,
  MapPrototypeSet,
  Number,
  ObjectPrototypeIsPrototypeOf,
  PromisePrototypeThen,
  PromiseReject,
  PromiseResolve,
  String,
  Symbol,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet,
  Uint8Array,
} = primordials;
const {
  op_kv_check_cache_ttl,
  op_kv_check_value_len,
  op_kv_immediate_reads,
  op_kv_get_text_now,
  op_kv_get_bytes_now,
  op_kv_get_text,
  op_kv_get_bytes,
  op_kv_get_with_metadata,
  op_kv_get_many,
  op_kv_put_text,
  op_kv_put_bytes,
  op_kv_delete,
  op_kv_list,
} = core.ops;

const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const { ReadableStream, ReadableStreamPrototype } = streams;

// Bulk gets answer with the global Map (as Workers does), captured before app code runs;
// primordials' Map is a separate "safe" class that fails `instanceof Map`.
const GlobalMap = globalThis.Map;
const TYPES = ["text", "json", "arrayBuffer", "stream"];
const BULK_TYPES = ["text", "json"];
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
const token = Symbol("KVNamespace");

function unknownType() {
  return new TypeError(
    'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".',
  );
}

function readType(options, allowed) {
  let type = "text";
  if (typeof options === "string") {
    type = options;
  } else if (options !== undefined && options !== null) {
    if (typeof options !== "object") {
      throw new TypeError("KV get() options must be a type string or an object { type, cacheTtl }");
    }
    if (options.type !== undefined) type = options.type;
    if (options.cacheTtl !== undefined) op_kv_check_cache_ttl(Number(options.cacheTtl));
  }
  if (!ArrayPrototypeIncludes(allowed, type)) {
    if (allowed === BULK_TYPES && ArrayPrototypeIncludes(TYPES, type)) {
      throw new TypeError(`"${type}" is not a valid type for a bulk get: use "text" or "json".`);
    }
    throw unknownType();
  }
  return type;
}

function wholeBuffer(bytes) {
  const buffer = TypedArrayPrototypeGetBuffer(bytes);
  const offset = TypedArrayPrototypeGetByteOffset(bytes);
  const length = TypedArrayPrototypeGetByteLength(bytes);
  if (offset === 0 && ArrayBufferPrototypeGetByteLength(buffer) === length) return buffer;
  return ArrayBufferPrototypeSlice(buffer, offset, offset + length);
}

function streamOf(bytes) {
  return new ReadableStream({
    start(controller) {
      if (TypedArrayPrototypeGetByteLength(bytes) > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

function fromText(type, text) {
  if (text === null) return null;
  return type === "json" ? JSONParse(text) : text;
}

function fromBytes(type, bytes) {
  if (bytes === null) return null;
  return type === "stream" ? streamOf(bytes) : wholeBuffer(bytes);
}

async function readAll(stream) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    if (!ArrayBufferIsView(value)) {
      reader.cancel();
      throw new TypeError("A ReadableStream given to KV put() must yield Uint8Arrays");
    }
    total += value.byteLength;
    if (total > MAX_VALUE_BYTES) {
      reader.cancel();
      op_kv_check_value_len(total);
    }
    ArrayPrototypePush(chunks, value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    TypedArrayPrototypeSet(out, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), at);
    at += chunk.byteLength;
  }
  return out;
}

function putOptions(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== "object") {
    throw new TypeError("KV put() options must be an object { expiration, expirationTtl, metadata }");
  }
  const out = {};
  if (options.expiration !== undefined) out.expiration = Number(options.expiration);
  if (options.expirationTtl !== undefined) out.expirationTtl = Number(options.expirationTtl);
  if (options.metadata !== undefined) {
    const json = JSONStringify(options.metadata);
    if (json === undefined) throw new TypeError("KV put() metadata must be serializable to JSON");
    out.metadata = json;
  }
  return out;
}

function parseMeta(json) {
  return json === null || json === undefined ? null : JSONParse(json);
}

class KVNamespace {
  #ns;
  #now;

  constructor(key, ns) {
    if (key !== token) throw new TypeError("Illegal constructor");
    this.#ns = ns;
    this.#now = op_kv_immediate_reads(ns);
  }

  get(key, options = undefined) {
    // A local store answers at once: read through a synchronous op and hand back a settled
    // promise, which on quickjs costs a fraction of an async op.
    if (this.#now && !ArrayIsArray(key)) {
      try {
        const type = readType(options, TYPES);
        key = String(key);
        if (type === "text") return PromiseResolve(op_kv_get_text_now(this.#ns, key));
        if (type === "json") return PromiseResolve(fromText(type, op_kv_get_text_now(this.#ns, key)));
        return PromiseResolve(fromBytes(type, op_kv_get_bytes_now(this.#ns, key)));
      } catch (err) {
        return PromiseReject(err);
      }
    }
    return this.#getAsync(key, options);
  }

  async #getAsync(key, options) {
    if (ArrayIsArray(key)) {
      const type = readType(options, BULK_TYPES);
      const keys = ArrayPrototypeMap(key, String);
      const found = await op_kv_get_many(this.#ns, keys, false);
      const out = new GlobalMap();
      for (let i = 0; i < keys.length; i++) {
        MapPrototypeSet(out, keys[i], fromText(type, found[i] === null ? null : found[i][0]));
      }
      return out;
    }
    const type = readType(options, TYPES);
    key = String(key);
    if (type === "text" || type === "json") {
      return fromText(type, await op_kv_get_text(this.#ns, key));
    }
    return fromBytes(type, await op_kv_get_bytes(this.#ns, key));
  }

  async getWithMetadata(key, options = undefined) {
    if (ArrayIsArray(key)) {
      const type = readType(options, BULK_TYPES);
      const keys = ArrayPrototypeMap(key, String);
      const found = await op_kv_get_many(this.#ns, keys, true);
      const out = new GlobalMap();
      for (let i = 0; i < keys.length; i++) {
        const hit = found[i];
        MapPrototypeSet(
          out,
          keys[i],
          hit === null
            ? { value: null, metadata: null }
            : { value: fromText(type, hit[0]), metadata: parseMeta(hit[1]) },
        );
      }
      return out;
    }
    const type = readType(options, TYPES);
    const bytes = type === "arrayBuffer" || type === "stream";
    const hit = await op_kv_get_with_metadata(this.#ns, String(key), bytes);
    if (hit === null) return { value: null, metadata: null, cacheStatus: null };
    const value = bytes ? fromBytes(type, hit.bytes) : fromText(type, hit.text);
    return { value, metadata: parseMeta(hit.metadata), cacheStatus: null };
  }

  // put and delete hand back the op's own promise, which resolves to undefined (no async
  // wrapper: on quickjs every extra async frame costs several microseconds); argument errors
  // still arrive as rejections.
  put(key, value, options = undefined) {
    try {
      key = String(key);
      const opts = putOptions(options);
      if (typeof value === "string") {
        return op_kv_put_text(this.#ns, key, value, opts);
      }
      if (ObjectPrototypeIsPrototypeOf(ArrayBufferPrototype, value)) {
        return op_kv_put_bytes(this.#ns, key, new Uint8Array(value), opts);
      }
      if (ArrayBufferIsView(value)) {
        const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        return op_kv_put_bytes(this.#ns, key, bytes, opts);
      }
      if (ObjectPrototypeIsPrototypeOf(ReadableStreamPrototype, value)) {
        return PromisePrototypeThen(
          readAll(value),
          (bytes) => op_kv_put_bytes(this.#ns, key, bytes, opts),
        );
      }
      throw new TypeError(
        "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.",
      );
    } catch (err) {
      return PromiseReject(err);
    }
  }

  delete(key) {
    try {
      return op_kv_delete(this.#ns, String(key));
    } catch (err) {
      return PromiseReject(err);
    }
  }

  async list(options = undefined) {
    const args = {};
    if (options !== undefined && options !== null) {
      if (typeof options !== "object") {
        throw new TypeError("KV list() options must be an object { prefix, limit, cursor }");
      }
      if (options.prefix !== undefined && options.prefix !== null) args.prefix = String(options.prefix);
      if (options.limit !== undefined && options.limit !== null) {
        args.limit = Number(options.limit);
      }
      if (options.cursor !== undefined && options.cursor !== null) args.cursor = String(options.cursor);
    }
    const page = await op_kv_list(this.#ns, args);
    for (const key of page.keys) {
      if (key.metadata !== undefined) key.metadata = JSONParse(key.metadata);
    }
    page.cacheStatus = null;
    return page;
  }
}

// `env.NAME` for each of the app's KV bindings: the namespace at its index.
defineBinding("kv", (index) => new KVNamespace(token, index));

export { KVNamespace };
