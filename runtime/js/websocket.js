// WebSockets as Workers have them: `new WebSocketPair()`, `accept()`, `send()`, `close()`,
// and `message` / `close` / `error` events. The two ends of a pair talk to each other inside
// the isolate until one end is returned in a `101` response; from then the other end talks to
// the client over the connection (runtime/src/isolate/websocket.rs), one message per event.
//
// Two behaviours follow the app's compatibility date, as on Workers (both checked under
// `wrangler dev`): from 2026-03-17 `binaryType` starts as "blob" (before, "arraybuffer"); from
// 2026-04-07 a close from the other end is answered at once (the end is CLOSED when its
// `close` event fires, and the closer gets its `close` event back); before, the end stays
// CLOSING until the script calls close() to answer.
import { core, primordials } from "ext:core/mod.js";
import { setWebSocketBrand } from "ext:edge_web/01_response.js";
import { enterInvocation } from "ext:edge_host/invocation.js";

const {
  ArrayBufferIsView,
  ArrayBufferPrototype,
  ArrayBufferPrototypeSlice,
  ArrayPrototypePush,
  ArrayPrototypeShift,
  DataViewPrototypeGetBuffer,
  DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset,
  Error,
  MathTrunc,
  Number,
  NumberIsFinite,
  ObjectDefineProperty,
  ObjectPrototypeIsPrototypeOf,
  SafeFinalizationRegistry,
  SafeWeakMap,
  String,
  StringPrototypeSlice,
  Symbol,
  SymbolIterator,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeGetSymbolToStringTag,
  Uint8Array,
  WeakMapPrototypeGet,
  WeakMapPrototypeSet,
} = primordials;
const {
  op_edge_respond_websocket,
  op_edge_ws_compat,
  op_edge_ws_next,
  op_edge_ws_text,
  op_edge_ws_binary_len,
  op_edge_ws_binary,
  op_edge_ws_closed,
  op_edge_ws_done,
  op_edge_ws_send_text,
  op_edge_ws_send_bytes,
  op_edge_ws_close,
  op_edge_ws_abort,
  op_edge_ws_connect,
  op_edge_ws_refusal_body,
} = core.ops;

const event = core.loadExtScript("ext:deno_web/02_event.js");

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** What the app's compatibility date decides (read once, when the first pair is made). */
let compat = null;
function compatibility() {
  if (compat === null) {
    const bits = op_edge_ws_compat();
    compat = { blob: (bits & 1) !== 0, autoReply: (bits & 2) !== 0 };
  }
  return compat;
}

/** Set when a listener throws (host.js hears of it through the global `error` event). */
let threw = false;

/** A listener threw: the connection whose event is being dispatched is dropped, as on
 * Workers (the client sees 1006). */
export function listenerThrew() {
  threw = true;
}

/** Dispatches `ev` on `ws`, which has a connection: if a listener throws, the connection is
 * dropped at once. */
function dispatchOnConnection(ws, s, ev) {
  threw = false;
  ws.dispatchEvent(ev);
  if (threw && s.rid !== null) {
    s.closeReceived = true;
    s.readyState = CLOSED;
    s.aborted = true;
    finish(s);
  }
}

/** Lets the runtime make a WebSocket; `new WebSocket(...)` from a script is refused. */
const makeKey = Symbol("edge.webSocket");

/** The state of each WebSocket, by object (also its brand check). */
const sockets = new SafeWeakMap();

function stateOf(ws) {
  const s = WeakMapPrototypeGet(sockets, ws);
  if (s === undefined) throw new TypeError("Illegal invocation");
  return s;
}

const NOT_ACCEPTED =
  "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.";

function invalidAccess(message) {
  return new DOMException(message, "InvalidAccessError");
}

/** A close code as workerd reads it: a number, truncated (not wrapped: 66536 stays 66536). */
function closeCode(value) {
  const n = Number(value);
  return NumberIsFinite(n) ? MathTrunc(n) : 0;
}

/** Whether a script may close with `code` (see runtime/src/websocket/mod.rs). */
function sendableCode(code) {
  return code >= 1000 && code <= 4999 && code !== 1004 && code !== 1005 && code !== 1006 &&
    code !== 1015;
}

/** A `send()` argument as a string or a copy of its bytes (the script may reuse its buffer). */
function messageData(message) {
  if (typeof message === "string") return message;
  if (ObjectPrototypeIsPrototypeOf(ArrayBufferPrototype, message)) {
    return new Uint8Array(ArrayBufferPrototypeSlice(message, 0));
  }
  if (ArrayBufferIsView(message)) {
    // A typed array has a toStringTag; a DataView has its own accessors.
    const typed = TypedArrayPrototypeGetSymbolToStringTag(message) !== undefined;
    const buffer = typed ? TypedArrayPrototypeGetBuffer(message) : DataViewPrototypeGetBuffer(message);
    const offset = typed
      ? TypedArrayPrototypeGetByteOffset(message)
      : DataViewPrototypeGetByteOffset(message);
    const length = typed
      ? TypedArrayPrototypeGetByteLength(message)
      : DataViewPrototypeGetByteLength(message);
    return new Uint8Array(ArrayBufferPrototypeSlice(buffer, offset, offset + length));
  }
  return String(message);
}

/** A close frame's reason is at most this many bytes, so never more UTF-16 units. */
const MAX_REASON = 123;

/** Strings longer than this are encoded on the heap (where it counts) before they are sent. */
const LONG_STRING = 1 << 20;

/** Sends `data` (a string or a Uint8Array of its own) on connection `rid`. */
function sendOn(rid, data) {
  if (typeof data !== "string") op_edge_ws_send_bytes(rid, data, false);
  else if (data.length > LONG_STRING) op_edge_ws_send_bytes(rid, core.encode(data), true);
  else op_edge_ws_send_text(rid, data);
}

/** The `data` of a message event for this end. */
function eventData(s, data) {
  if (typeof data === "string") return data;
  if (s.binaryType === "blob") return new Blob([data]);
  return TypedArrayPrototypeGetBuffer(data);
}

class WebSocket extends event.EventTarget {
  constructor(url = undefined, _protocols = undefined) {
    super();
    if (url !== makeKey) {
      throw new TypeError(
        "new WebSocket(url) is not supported on edge: open an outbound WebSocket with fetch(url, { headers: { Upgrade: \"websocket\" } }) and accept() response.webSocket",
      );
    }
    WeakMapPrototypeSet(sockets, this, {
      readyState: OPEN,
      accepted: false,
      // Returned in a Response: this end is the client's now.
      released: false,
      // This end called close() (or answered a close on its own).
      closeSent: false,
      // The other end closed (or went away).
      closeReceived: false,
      // The other end of the pair, while it is in this isolate; or the connection.
      peer: null,
      rid: null,
      // Events that arrived before accept().
      pending: [],
      // Its connection was dropped because a listener threw.
      aborted: false,
      binaryType: compatibility().blob ? "blob" : "arraybuffer",
      attachment: undefined,
    });
  }

  get readyState() {
    return stateOf(this).readyState;
  }

  get url() {
    stateOf(this);
    return null;
  }

  get protocol() {
    stateOf(this);
    return "";
  }

  get extensions() {
    stateOf(this);
    return "";
  }

  get binaryType() {
    return stateOf(this).binaryType;
  }

  set binaryType(value) {
    const s = stateOf(this);
    const type = String(value);
    if (type === "arraybuffer" || type === "blob") s.binaryType = type;
  }

  /** Starts delivering this end's events (those that came before too). */
  accept() {
    const s = stateOf(this);
    if (s.released) {
      throw new TypeError("Can't accept() WebSocket that was already used in a response.");
    }
    if (s.accepted) return;
    s.accepted = true;
    if (s.pending.length > 0) deliverPending(this, s);
    if (s.rid !== null) readLoop(this, s, s.rid);
  }

  send(message) {
    const s = stateOf(this);
    if (s.released) {
      throw new TypeError("Can't call WebSocket send() on a WebSocket that was used in a response.");
    }
    if (!s.accepted) throw new TypeError(NOT_ACCEPTED);
    if (s.closeSent) throw new TypeError("Can't call WebSocket send() after close().");
    const data = messageData(message);
    // The other end closed or is gone: as on Workers, the message goes nowhere.
    if (s.closeReceived) return;
    if (s.rid !== null) {
      sendOn(s.rid, data);
    } else if (s.peer !== null) {
      receive(s.peer, { type: "message", data });
    }
  }

  close(code = undefined, reason = undefined) {
    const s = stateOf(this);
    if (s.released) {
      throw new TypeError("Can't call WebSocket close() on a WebSocket that was used in a response.");
    }
    let wire = 0;
    if (code !== undefined) {
      wire = closeCode(code);
      if (!sendableCode(wire)) throw invalidAccess(`Invalid WebSocket close code: ${wire}.`);
    }
    const text = reason === undefined ? "" : String(reason);
    if (reason !== undefined && code === undefined) {
      throw invalidAccess("If you specify a WebSocket close reason, you must also specify a code.");
    }
    if (!s.accepted) throw new TypeError(NOT_ACCEPTED);
    if (s.closeSent) return;
    s.closeSent = true;
    // Answering the other end's close finishes the socket; otherwise it waits for the answer.
    s.readyState = s.closeReceived ? CLOSED : CLOSING;
    if (s.rid !== null) {
      // The wire carries at most 123 bytes of it: no more crosses to the runtime.
      op_edge_ws_close(s.rid, wire, StringPrototypeSlice(text, 0, MAX_REASON));
      if (s.readyState === CLOSED) finish(s);
    } else if (s.peer !== null) {
      receive(s.peer, { type: "close", code: wire === 0 ? 1005 : wire, reason: text });
    }
  }

  serializeAttachment(value) {
    stateOf(this).attachment = structuredClone(value);
  }

  deserializeAttachment() {
    const value = stateOf(this).attachment;
    return value === undefined ? null : structuredClone(value);
  }
}

for (
  const [name, value] of [["CONNECTING", CONNECTING], ["OPEN", OPEN], ["CLOSING", CLOSING], [
    "CLOSED",
    CLOSED,
  ]]
) {
  for (const key of [name, `READY_STATE_${name}`]) {
    const descriptor = { __proto__: null, value, enumerable: true };
    ObjectDefineProperty(WebSocket, key, descriptor);
    ObjectDefineProperty(WebSocket.prototype, key, descriptor);
  }
}

/** The connection of `s` is done with: its resource goes (what is queued is still written). */
function finish(s) {
  if (s.rid === null) return;
  const rid = s.rid;
  s.rid = null;
  dropped.unregister(s);
  if (s.aborted) op_edge_ws_abort(rid);
  core.tryClose(rid);
}

/** Handles a close from the other end (`code`, `reason`, clean) on the end whose state is `s`; returns the
 * event to dispatch. With auto-reply, the close is answered: the other end of a pair gets it
 * back (a connection's answer is written by the runtime). */
function closeReceived(s, code, reason) {
  s.closeReceived = true;
  if (s.closeSent) {
    s.readyState = CLOSED;
  } else if (compatibility().autoReply) {
    s.closeSent = true;
    s.readyState = CLOSED;
    if (s.peer !== null) receive(s.peer, { type: "close", code, reason });
  } else {
    s.readyState = CLOSING;
  }
  return new event.CloseEvent("close", { code, reason, wasClean: true });
}

/** An event (`{ type: "message", data }` or `{ type: "close", code, reason }`) for `ws` from
 * the other end of its pair: delivered once it is accepted, after the current task. */
function receive(ws, ev) {
  const s = stateOf(ws);
  if (s.closeReceived) return;
  ArrayPrototypePush(s.pending, ev);
  // Before this end went out in a response, what is sent to it waits: it goes to the
  // client, in order, once the response is made.
  if (!s.released && s.accepted && s.pending.length === 1) deliverPending(ws, s);
}

/** Dispatches `s.pending` on `ws`, one event at a time, each as a task of its own (after
 * the current task and its microtasks, as on Workers). */
function deliverPending(ws, s) {
  core.createTimer(() => {
    const ev = ArrayPrototypeShift(s.pending);
    if (ev === undefined) return;
    if (!s.closeReceived) {
      if (ev.type === "message") {
        ws.dispatchEvent(new event.MessageEvent("message", { data: eventData(s, ev.data) }));
      } else {
        ws.dispatchEvent(closeReceived(s, ev.code, ev.reason));
      }
    }
    if (s.pending.length > 0) deliverPending(ws, s);
  }, 0, undefined, false, true, true);
}

/** Reads the connection of `ws` until it ends: each message (and the end) is an event in
 * flight of its own, its listeners run with its id as their async context (so what they
 * start is charged to it). */
async function readLoop(ws, s, rid) {
  try {
    await readEvents(ws, s, rid);
  } catch (err) {
    // Not the script's doing (an allocation refused, say): the connection goes.
    s.closeReceived = true;
    s.readyState = CLOSED;
    s.aborted = true;
    finish(s);
    throw err;
  }
}

async function readEvents(ws, s, rid) {
  while (true) {
    const next = await op_edge_ws_next(rid);
    const kind = next % 4;
    const id = (next - kind) / 4;
    const outer = enterInvocation(id);
    try {
      if (s.aborted) return;
      if (kind === 0) {
        const text = op_edge_ws_text(rid);
        if (!s.closeReceived) {
          dispatchOnConnection(ws, s, new event.MessageEvent("message", { data: text }));
        }
        if (s.aborted) return;
      } else if (kind === 1) {
        const bytes = new Uint8Array(op_edge_ws_binary_len(rid));
        op_edge_ws_binary(rid, bytes);
        if (!s.closeReceived) {
          dispatchOnConnection(ws, s, new event.MessageEvent("message", { data: eventData(s, bytes) }));
        }
        if (s.aborted) return;
      } else if (kind === 2) {
        const { 0: code, 1: reason } = op_edge_ws_closed(rid);
        const closed = closeReceived(s, code, reason);
        // Answered (by the runtime, or by a close() of ours earlier): the connection is done.
        if (s.readyState === CLOSED) finish(s);
        ws.dispatchEvent(closed);
        return;
      } else {
        const { 0: code, 1: reason, 2: error } = op_edge_ws_closed(rid);
        s.closeReceived = true;
        s.readyState = CLOSED;
        finish(s);
        if (error !== "") {
          ws.dispatchEvent(new event.ErrorEvent("error", { message: error, error: new Error(error) }));
        }
        ws.dispatchEvent(new event.CloseEvent("close", { code, reason, wasClean: false }));
        return;
      }
    } finally {
      core.setAsyncContext(outer);
      op_edge_ws_done(id);
    }
  }
}

/** Closes the connections of sockets the script dropped without closing them. */
const dropped = new SafeFinalizationRegistry((rid) => core.tryClose(rid));

class WebSocketPair {
  constructor() {
    const client = new WebSocket(makeKey);
    const server = new WebSocket(makeKey);
    stateOf(client).peer = server;
    stateOf(server).peer = client;
    ObjectDefineProperty(this, 0, { __proto__: null, value: client, enumerable: true, configurable: true });
    ObjectDefineProperty(this, 1, { __proto__: null, value: server, enumerable: true, configurable: true });
  }

  *[SymbolIterator]() {
    yield this[0];
    yield this[1];
  }
}

/**
 * Answers invocation `id` with a `101` whose connection becomes the other end of `ws` (the
 * response's `webSocket`, an end of a pair). When the runtime cannot (it answered the request
 * with an error), the other end is left as if its client went away at once.
 */
export function respondWebSocket(id, headers, ws) {
  const s = stateOf(ws);
  const other = s.peer;
  if (s.released || s.accepted || other === null) {
    throw new TypeError(
      "A WebSocket returned in a response must be one end of a WebSocketPair that was neither accepted nor returned before.",
    );
  }
  s.released = true;
  const o = stateOf(other);
  o.peer = null;
  const rid = op_edge_respond_websocket(id, headers);
  if (rid < 0) {
    o.closeReceived = true;
    o.readyState = CLOSED;
    return;
  }
  o.rid = rid;
  dropped.register(other, rid, o);
  // What the other end sent (or its close) before this end went out goes first.
  const early = s.pending;
  s.pending = [];
  for (let i = 0; i < early.length; i++) {
    const ev = early[i];
    if (ev.type === "message") {
      sendOn(rid, ev.data);
    } else {
      op_edge_ws_close(rid, ev.code === 1005 ? 0 : ev.code, StringPrototypeSlice(ev.reason, 0, MAX_REASON));
    }
  }
  if (o.accepted) readLoop(other, o, rid);
}

/**
 * `fetch(request)` of a request with `Upgrade: websocket`, for invocation `id`: opens a
 * WebSocket to its URL. Resolves to a `101` response whose `webSocket` the script accepts,
 * or to the server's answer when it did not upgrade.
 */
export async function connectWebSocket(request, id) {
  const headers = [];
  for (const { 0: name, 1: value } of request.headers) ArrayPrototypePush(headers, [name, value]);
  const answer = await op_edge_ws_connect(id, request.url, headers);
  if (answer.rid < 0) {
    const body = new Uint8Array(answer.bodyLen);
    op_edge_ws_refusal_body(answer.body, body);
    const status = answer.status;
    if (status < 200 || status > 599) {
      throw new TypeError(`the server answered the WebSocket handshake with status ${status}`);
    }
    const nullBody = status === 204 || status === 205 || status === 304;
    return new Response(nullBody ? null : body, { status, headers: answer.headers });
  }
  const ws = new WebSocket(makeKey);
  const s = stateOf(ws);
  s.rid = answer.rid;
  dropped.register(ws, answer.rid, s);
  return new Response(null, { status: 101, webSocket: ws, headers: answer.headers });
}

/** Whether `value` is a WebSocket. */
export function isWebSocket(value) {
  return WeakMapPrototypeGet(sockets, value) !== undefined;
}

setWebSocketBrand(isWebSocket);

const nonEnum = (value) => ({ __proto__: null, value, writable: true, configurable: true });
ObjectDefineProperty(globalThis, "WebSocket", nonEnum(WebSocket));
ObjectDefineProperty(globalThis, "WebSocketPair", nonEnum(WebSocketPair));
ObjectDefineProperty(globalThis, "CloseEvent", nonEnum(event.CloseEvent));
