// Workers' `encodeBody` option of `new Response(body, init)` and `Response.json(data, init)`.
//
// A response whose `Content-Encoding` header names gzip, deflate or br has its body compressed
// by the runtime as it is sent ("automatic", the default), unless the script says its body is
// already encoded ("manual"). deno_fetch's Response knows nothing of the option, so the global
// `Response` is deno_fetch's class seen through a Proxy that reads the option when a response
// is made; its prototype, statics and `instanceof` are the class's own.
import { core, primordials } from "ext:core/mod.js";

const {
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptor,
  Proxy,
  RangeError,
  ReflectApply,
  ReflectConstruct,
  SafeWeakMap,
  SafeWeakSet,
  String,
  WeakMapPrototypeGet,
  WeakMapPrototypeSet,
  TypeError,
  WeakSetPrototypeAdd,
  WeakSetPrototypeHas,
} = primordials;

const responseMod = core.loadExtScript("ext:deno_fetch/23_response.js");
const Base = responseMod.Response;

/** Responses whose body the script encoded itself. */
const manual = new SafeWeakSet();

/** Whether `init` asks for "manual"; throws on a value that is neither mode, as Workers does. */
function wantsManual(init, prefix) {
  if (init === undefined || init === null || (typeof init !== "object" && typeof init !== "function")) {
    return false;
  }
  const value = init.encodeBody;
  if (value === undefined) return false;
  const mode = String(value);
  if (mode === "manual") return true;
  if (mode === "automatic") return false;
  throw new TypeError(
    `${prefix}: encodeBody must be "automatic" or "manual", not "${mode}"`,
  );
}

/** Whether `response` is to be sent with its body as it is (see the top of this file). */
/**
 * The byte length of each `FixedLengthStream`'s readable side: a response with one as its body
 * is sent with that `Content-Length`, as on Workers.
 */
export const fixedLengths = new SafeWeakMap();

/**
 * Body streams whose length the script's headers cannot know (an HTMLRewriter's output): a
 * response with one is sent without its Content-Length, as on Workers, though the header stays
 * visible to the script.
 */
export const unsizedBodies = new SafeWeakSet();

export function isEncodedByScript(response) {
  return WeakSetPrototypeHas(manual, response);
}

/** Each `101` response's `webSocket` (an end of a WebSocketPair, runtime/js/websocket.js). */
const webSockets = new SafeWeakMap();

/** Tells a WebSocket from anything else; given by the module that defines WebSocket. */
let isWebSocket = () => false;

/** Sets the brand check `new Response(null, { webSocket })` uses. */
export function setWebSocketBrand(check) {
  isWebSocket = check;
}

/** The WebSocket a response carries, or null. */
export function webSocketOf(response) {
  return WeakMapPrototypeGet(webSockets, response) ?? null;
}

/**
 * The arguments to construct deno_fetch's Response with, and the WebSocket the response is to
 * carry: Workers' `webSocket` option, which needs status 101 (a status deno_fetch refuses, so
 * the response is made as 200 and given 101 after).
 */
function withWebSocket(args) {
  const init = args[1];
  if (init === undefined || init === null || (typeof init !== "object" && typeof init !== "function")) {
    return [args, null];
  }
  const ws = init.webSocket;
  if (ws === undefined || ws === null) {
    const status = init.status;
    if (status !== undefined && !(status >= 200 && status <= 599)) {
      // workerd's words for deno_fetch's check.
      throw new RangeError(
        "Responses may only be constructed with status codes in the range 200 to 599, inclusive.",
      );
    }
    return [args, null];
  }
  if (!isWebSocket(ws)) {
    throw new TypeError(
      "Incorrect type for the 'webSocket' field on 'InitializerDict': the provided value is not of type 'WebSocket'.",
    );
  }
  if (init.status !== 101) {
    throw new RangeError("Responses with a WebSocket must have status code 101.");
  }
  if (args[0] !== undefined && args[0] !== null) {
    throw new TypeError("Response with null body status (101, 204, 205, or 304) cannot have a body.");
  }
  const statusText = init.statusText === undefined ? "Switching Protocols" : init.statusText;
  return [[null, { headers: init.headers, statusText, encodeBody: init.encodeBody }], ws];
}

/** The global `Response`: deno_fetch's class, reading `encodeBody`. */
export const Response = new Proxy(Base, {
  __proto__: null,
  construct(target, args, newTarget) {
    const isManual = wantsManual(args[1], "Failed to construct 'Response'");
    const { 0: built, 1: ws } = withWebSocket(args);
    // `new Response(...)` reaches here with the Proxy as new.target; constructing with the class
    // itself gives the same object (the Proxy forwards `prototype`) on V8's fast path, where a
    // Proxy new.target has the engine look its prototype up through the Proxy every time.
    const response = ReflectConstruct(target, built, newTarget === Response ? target : newTarget);
    if (isManual) WeakSetPrototypeAdd(manual, response);
    if (ws !== null) {
      responseMod.toInnerResponse(response).status = 101;
      WeakMapPrototypeSet(webSockets, response, ws);
    }
    return response;
  },
});

const baseJson = Base.json;
ObjectDefineProperty(Base, "json", {
  __proto__: null,
  ...ObjectGetOwnPropertyDescriptor(Base, "json"),
  value: {
    json(data = undefined, init = undefined) {
      const isManual = wantsManual(init, "Failed to execute 'Response.json'");
      const response = ReflectApply(baseJson, this, [data, init]);
      if (isManual) WeakSetPrototypeAdd(manual, response);
      return response;
    },
  }.json,
});

// A clone is sent as its original would be.
const baseClone = Base.prototype.clone;
ObjectDefineProperty(Base.prototype, "clone", {
  __proto__: null,
  ...ObjectGetOwnPropertyDescriptor(Base.prototype, "clone"),
  value: {
    clone() {
      if (webSocketOf(this) !== null) {
        throw new TypeError("Cannot clone a response to a WebSocket handshake.");
      }
      const copy = ReflectApply(baseClone, this, []);
      if (WeakSetPrototypeHas(manual, this)) WeakSetPrototypeAdd(manual, copy);
      return copy;
    },
  }.clone,
});

// `response.webSocket`: the WebSocket a `101` response carries, else null.
ObjectDefineProperty(Base.prototype, "webSocket", {
  __proto__: null,
  get: {
    webSocket() {
      return webSocketOf(this);
    },
  }.webSocket,
  enumerable: true,
  configurable: true,
});

// `response.constructor === Response` holds for the global.
ObjectDefineProperty(Base.prototype, "constructor", {
  __proto__: null,
  ...ObjectGetOwnPropertyDescriptor(Base.prototype, "constructor"),
  value: Response,
});
