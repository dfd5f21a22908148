// The Cache API: the global `caches` (a CacheStorage), with `caches.default` and
// `caches.open(name)` giving a Cache with `match`, `put` and `delete`, as on Workers. The
// checks Workers makes before a call reaches its cache (and their messages) are here; the HTTP
// rules (what is stored, for how long, 304, Range) are in Rust (bindings/cache/src).
import { core, primordials } from "ext:core/mod.js";
import { Response } from "ext:edge_web/01_response.js";
import { Request } from "ext:edge_web/04_request.js";

const {
  ArrayPrototypeIncludes,
  ArrayPrototypePush,
  Number,
  NumberIsFinite,
  ObjectKeys,
  PromisePrototypeCatch,
  PromisePrototypeThen,
  ObjectDefineProperties,
  ObjectDefineProperty,
  ObjectPrototypeIsPrototypeOf,
  String,
  StringPrototypeIncludes,
  StringPrototypeIndexOf,
  StringPrototypeSlice,
  Symbol,
  SymbolToStringTag,
  TypeError,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetSymbolToStringTag,
  Uint8Array,
} = primordials;
const {
  op_cache_match,
  op_cache_take_body,
  op_cache_put_begin,
  op_cache_put_chunk,
  op_cache_put_end,
  op_cache_put_abort,
  op_cache_delete,
} = core.ops;

const { toInnerResponse } = core.loadExtScript("ext:deno_fetch/23_response.js");
const { InnerBody } = core.loadExtScript("ext:deno_fetch/22_body.js");

const illegal = Symbol("Cache");
// Statuses whose responses have no body.
const NULL_BODY = [101, 204, 205, 304];
const MAX_NAME_BYTES = 1024;

/** The request a Cache method was given: a Request, or a URL (anything but undefined, as a string). */
function toRequest(input, method) {
  if (ObjectPrototypeIsPrototypeOf(Request.prototype, input)) return input;
  if (input === undefined) {
    throw new TypeError(`Failed to execute '${method}' on 'Cache': parameter 1 is not of type 'Request or string'.`);
  }
  return new Request(String(input));
}

/**
 * The key Workers' cache files a request under: `cf.cacheKey` when set, else its URL without
 * the fragment (the cache is asked over HTTP, where a fragment never goes).
 */
function keyOf(request) {
  const cacheKey = request.cf?.cacheKey;
  if (cacheKey) return String(cacheKey);
  const url = request.url;
  const hash = StringPrototypeIndexOf(url, "#");
  return hash === -1 ? url : StringPrototypeSlice(url, 0, hash);
}

/** What a method Workers declares but does not implement does: throw at once. */
function notImplemented(method, on) {
  throw new Error(`Failed to execute '${method}' on '${on}': the method is not implemented.`);
}

/**
 * A reply of `op_cache_match` as a Response: its body copied out of the cache into a buffer of
 * the isolate's own (counted against its memory limit).
 */
function responseOf(reply) {
  let body = null;
  if (reply.body !== 0) {
    try {
      body = new Uint8Array(reply.length);
    } finally {
      // Let the parked body go even when the buffer could not be had (memory limit).
      op_cache_take_body(reply.body, body ?? new Uint8Array(0));
    }
  }
  const nullBody = ArrayPrototypeIncludes(NULL_BODY, reply.status);
  return new Response(nullBody ? null : (body ?? new Uint8Array(0)), {
    status: reply.status,
    statusText: reply.statusText,
    headers: reply.headers,
  });
}

/**
 * Reads `body` into put `id` (the response's body or a tee of it; id 0: read and dropped);
 * true when all of it went.
 */
async function fill(id, body) {
  try {
    const reader = body.getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) return true;
      if (TypedArrayPrototypeGetSymbolToStringTag(value) !== "Uint8Array") {
        throw new TypeError("This ReadableStream did not return bytes.");
      }
      if (id !== 0 && TypedArrayPrototypeGetByteLength(value) > 0 && !op_cache_put_chunk(id, value)) {
        // Past the entry or app bound: nothing will be stored, the rest is not read.
        await reader.cancel();
        return false;
      }
    }
  } catch (e) {
    if (id !== 0) op_cache_put_abort(id);
    throw e;
  }
}

/** Stores what put `id` read, or lets it go if it did not read it all. */
function finish(id, whole) {
  if (id === 0) return undefined;
  if (!whole) {
    op_cache_put_abort(id);
    return undefined;
  }
  return op_cache_put_end(id);
}

class Cache {
  /** `null` for `caches.default`, else the name given to `caches.open`. */
  #name;

  constructor(key = undefined, name = null) {
    if (key !== illegal) throw new TypeError("Illegal constructor");
    this.#name = name;
  }

  add(_request) {
    return notImplemented("add", "Cache");
  }

  addAll(_requests) {
    return notImplemented("addAll", "Cache");
  }

  matchAll(_request, _options) {
    return notImplemented("matchAll", "Cache");
  }

  keys(_request, _options) {
    return notImplemented("keys", "Cache");
  }

  async match(request, options = undefined) {
    const req = toRequest(request, "match");
    if (!options?.ignoreMethod && req.method !== "GET") return undefined;
    const headers = req.headers;
    const reply = await op_cache_match({
      cache: this.#name,
      key: keyOf(req),
      range: headers.get("range"),
      ifNoneMatch: headers.get("if-none-match"),
      ifModifiedSince: headers.get("if-modified-since"),
      ifRange: headers.get("if-range"),
    });
    if (reply === null) return undefined;
    return responseOf(reply);
  }

  async put(request, response) {
    // Arguments are checked in order, as Workers converts them.
    if (request === undefined) toRequest(request, "put");
    if (!ObjectPrototypeIsPrototypeOf(Response.prototype, response)) {
      throw new TypeError("Failed to execute 'put' on 'Cache': parameter 2 is not of type 'Response'.");
    }
    if (response.type === "error") {
      throw new TypeError("Cache is unable to store an error response");
    }
    const req = toRequest(request, "put");
    if (req.method !== "GET") throw new TypeError("Cannot cache response to non-GET request.");
    if (response.status === 206) {
      throw new TypeError("Cannot cache response to a range request (206 Partial Content).");
    }
    const vary = response.headers.get("vary");
    if (vary !== null && StringPrototypeIncludes(vary, "*")) {
      throw new TypeError("Cannot cache response with 'Vary: *' header.");
    }
    // A 304 is not worth caching and would answer later plain requests wrongly: dropped, as
    // Workers does, without an error.
    if (response.status === 304) return undefined;
    if (response.bodyUsed) {
      throw new TypeError("Body has already been used. It can only be used once. Use tee() first if you need to read it twice.");
    }
    const headers = [];
    for (const pair of response.headers) ArrayPrototypePush(headers, pair);
    const id = op_cache_put_begin({
      cache: this.#name,
      key: keyOf(req),
      status: response.status,
      headers,
      authorized: req.headers.has("authorization"),
      forcedTtl: null,
    });
    let body;
    try {
      body = response.body;
    } catch (e) {
      finish(id, false);
      throw e;
    }
    // Read now (the body is disturbed when put returns, as on Workers), chunk by chunk into
    // the cache; a response that is not stored is read and dropped.
    const whole = body === null ? true : await fill(id, body);
    await finish(id, whole);
    return undefined;
  }

  async delete(request, options = undefined) {
    const req = toRequest(request, "delete");
    if (!options?.ignoreMethod && req.method !== "GET") return false;
    return await op_cache_delete(this.#name, keyOf(req));
  }

  get [SymbolToStringTag]() {
    return "Cache";
  }
}

const defaultCache = new Cache(illegal, null);

class CacheStorage {
  constructor(key = undefined) {
    if (key !== illegal) throw new TypeError("Illegal constructor");
    // An own, read-only property, as on Workers.
    ObjectDefineProperty(this, "default", { value: defaultCache, enumerable: true });
  }

  match(_request, _options) {
    return notImplemented("match", "CacheStorage");
  }

  has(_cacheName) {
    return notImplemented("has", "CacheStorage");
  }

  delete(_cacheName) {
    return notImplemented("delete", "CacheStorage");
  }

  keys() {
    return notImplemented("keys", "CacheStorage");
  }

  async open(cacheName) {
    const name = String(cacheName);
    if (TypedArrayPrototypeGetByteLength(core.encode(name)) >= MAX_NAME_BYTES) {
      throw new TypeError("Cache name is too long.");
    }
    return new Cache(illegal, name);
  }

  get [SymbolToStringTag]() {
    return "CacheStorage";
  }
}

const caches = new CacheStorage(illegal);

ObjectDefineProperties(globalThis, {
  Cache: core.propNonEnumerable(Cache),
  CacheStorage: core.propNonEnumerable(CacheStorage),
  caches: { value: caches, writable: true, enumerable: true, configurable: true },
});

// `fetch(url, { cf: { cacheTtl, cacheTtlByStatus, cacheEverything, cacheKey } })` goes through the
// app's default cache, as a Worker's subrequest goes through Cloudflare's: a fresh entry answers
// (with `cf-cache-status: HIT`), else the response is fetched and stored as it is read -- for
// `cacheTtl` seconds (statuses 200, 301, 302, 303, 404, 410) or the `cacheTtlByStatus` time
// of its status ("200-299": 86400; 0 or less: not stored) whatever its headers say, or else as
// its own caching headers say. A fetch without those options is not cached.
const innerFetch = globalThis.fetch;
const FORCEABLE = [200, 301, 302, 303, 404, 410];
// A request that asks for part of a resource, or for it only if changed, or with credentials,
// is not answered from or stored into the cache: its answer is not the resource's.
const UNCACHED_REQUEST_HEADERS = ["range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "authorization"];

function cachesFetch(cf) {
  return cf !== null && typeof cf === "object" &&
    (cf.cacheTtl !== undefined || cf.cacheTtlByStatus !== undefined ||
      cf.cacheEverything === true || cf.cacheKey !== undefined);
}

/** The TTL `cf` forces on a response of `status`, or null to go by its headers. */
function forcedTtl(cf, status) {
  const byStatus = cf.cacheTtlByStatus;
  if (byStatus !== null && typeof byStatus === "object") {
    for (const range of ObjectKeys(byStatus)) {
      const dash = StringPrototypeIndexOf(range, "-");
      const low = Number(dash === -1 ? range : StringPrototypeSlice(range, 0, dash));
      const high = Number(dash === -1 ? range : StringPrototypeSlice(range, dash + 1));
      const ttl = Number(byStatus[range]);
      if (status >= low && status <= high && NumberIsFinite(ttl)) return ttl;
    }
  }
  const ttl = cf.cacheTtl;
  if (typeof ttl === "number" && NumberIsFinite(ttl) && ArrayPrototypeIncludes(FORCEABLE, status)) {
    return ttl;
  }
  return null;
}

async function cachedFetch(input, init, cf) {
  const request = new Request(input, init);
  if (request.method !== "GET") return await innerFetch(request);
  for (const name of UNCACHED_REQUEST_HEADERS) {
    if (request.headers.has(name)) return await innerFetch(request);
  }
  const key = keyOf(request);
  const reply = await op_cache_match({
    cache: null,
    key,
    range: null,
    ifNoneMatch: null,
    ifModifiedSince: null,
    ifRange: null,
  });
  if (reply !== null) {
    const hit = responseOf(reply);
    toInnerResponse(hit).urlList = [request.url];
    return hit;
  }
  const response = await innerFetch(request);
  const ttl = forcedTtl(cf, response.status);
  if ((ttl !== null && ttl <= 0) || response.status === 206) return response;
  const headers = [];
  for (const pair of response.headers) ArrayPrototypePush(headers, pair);
  const id = op_cache_put_begin({
    cache: null,
    key,
    status: response.status,
    headers,
    authorized: request.headers.has("authorization"),
    forcedTtl: ttl,
  });
  if (id === 0) return response;
  const body = response.body;
  if (body === null) {
    await finish(id, true);
    return response;
  }
  // One branch for the script, one stored as it arrives (a failed fetch body stores nothing).
  const { 0: forScript, 1: forCache } = body.tee();
  toInnerResponse(response).body = new InnerBody(forScript);
  PromisePrototypeThen(
    fill(id, forCache),
    (whole) => {
      const stored = finish(id, whole);
      if (stored !== undefined) PromisePrototypeCatch(stored, () => {});
    },
    () => {},
  );
  return response;
}

globalThis.fetch = {
  fetch(input, init = undefined) {
    const cf = init?.cf ?? (ObjectPrototypeIsPrototypeOf(Request.prototype, input) ? input.cf : undefined);
    if (!cachesFetch(cf)) return innerFetch(input, init);
    return cachedFetch(input, init, cf);
  },
}.fetch;
