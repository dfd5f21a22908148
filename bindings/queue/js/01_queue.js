// env.JOBS: a Workers `Queue` (a producer) over the edge_queue ops. Bodies are encoded here by
// content type; every Queues rule (sizes, counts, delays) is checked in Rust.
import { core, primordials } from "ext:core/mod.js";
import { defineBinding } from "ext:edge_binding/registry.js";

const {
  ArrayBufferIsView,
  ArrayBufferPrototype,
  ArrayBufferPrototypeGetByteLength,
  ArrayPrototypePush,
  JSONStringify,
  Number,
  ObjectPrototypeIsPrototypeOf,
  Symbol,
  SymbolIterator,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet,
  Uint8Array,
} = primordials;
const { op_queue_send } = core.ops;

const token = Symbol("edge.queue");

/** `body` encoded as `contentType` says. */
function encode(body, contentType) {
  switch (contentType) {
    case "json": {
      const text = JSONStringify(body);
      if (text === undefined) throw new TypeError("Queue send failed: the body is not serializable to JSON");
      return core.encode(text);
    }
    case "text":
      if (typeof body !== "string") throw new TypeError("Queue send failed: a text body must be a string");
      return core.encode(body);
    case "bytes":
      if (ObjectPrototypeIsPrototypeOf(ArrayBufferPrototype, body)) {
        return new Uint8Array(body, 0, ArrayBufferPrototypeGetByteLength(body));
      }
      if (ArrayBufferIsView(body)) {
        return new Uint8Array(
          TypedArrayPrototypeGetBuffer(body),
          TypedArrayPrototypeGetByteOffset(body),
          TypedArrayPrototypeGetByteLength(body),
        );
      }
      throw new TypeError("Queue send failed: a bytes body must be an ArrayBuffer or a view of one");
    case "v8":
      return core.serialize(body);
    default:
      throw new TypeError(`Queue send failed: contentType ${String(contentType)} is not one of json, text, bytes, v8`);
  }
}

class Queue {
  #index;
  constructor(key, index) {
    if (key !== token) throw new TypeError("Illegal constructor");
    this.#index = index;
  }

  /** Sends one message; resolves once it is durable. */
  async send(body, options = undefined) {
    await this.#send([{ body, contentType: options?.contentType, delaySeconds: options?.delaySeconds }], undefined);
  }

  /** Sends up to 100 messages at once; resolves once they are all durable. */
  async sendBatch(messages, options = undefined) {
    if (messages === null || typeof messages !== "object" || typeof messages[SymbolIterator] !== "function") {
      throw new TypeError("Queue sendBatch failed: messages must be an iterable of { body, contentType?, delaySeconds? }");
    }
    const list = [];
    for (const m of messages) ArrayPrototypePush(list, m);
    await this.#send(list, options?.delaySeconds);
  }

  async #send(list, batchDelay) {
    const encoded = [];
    const parts = [];
    let total = 0;
    for (const m of list) {
      if (m === null || typeof m !== "object") throw new TypeError("Queue send failed: each message must be { body, ... }");
      const contentType = m.contentType ?? "json";
      const bytes = encode(m.body, contentType);
      const delay = m.delaySeconds ?? batchDelay;
      ArrayPrototypePush(encoded, bytes);
      ArrayPrototypePush(parts, [contentType, TypedArrayPrototypeGetByteLength(bytes), delay === undefined ? null : Number(delay)]);
      total += TypedArrayPrototypeGetByteLength(bytes);
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const bytes of encoded) {
      TypedArrayPrototypeSet(all, bytes, at);
      at += TypedArrayPrototypeGetByteLength(bytes);
    }
    await op_queue_send(this.#index, all, parts);
  }
}

// `env.NAME` for each of the app's queue producers.
defineBinding("queue", (index) => new Queue(token, index));

export { Queue };
