// Workers' `HTMLRewriter`: `new HTMLRewriter().on(selector, handlers).onDocument(handlers)
// .transform(response)` gives a response whose body is the original's, rewritten as it streams.
//
// The parsing and rewriting is Cloudflare's lol_html, in edge_web's html_rewriter ops; this
// module holds the handlers, drives the rewriter from the original body (one chunk at a time, as
// the new body is read) and gives each handler its token: an object whose every method is an op
// on lol_html's token, which is only valid while its handler runs (async handlers included).
import { core, primordials } from "ext:core/mod.js";
import { Response, unsizedBodies } from "ext:edge_web/01_response.js";

const {
  ObjectDefineProperty,
  ArrayPrototypePush,
  ArrayPrototypeSlice,
  PromisePrototypeThen,
  PromiseResolve,
  ArrayPrototypeSymbolIterator,
  ObjectPrototypeIsPrototypeOf,
  SafeFinalizationRegistry,
  SafeMap,
  MapPrototypeGet,
  MapPrototypeDelete,
  MapPrototypeSet,
  ArrayBufferIsView,
  ArrayBufferPrototypeGetByteLength,
  ObjectPrototypeToString,
  ReflectApply,
  String,
  TypeError,
  Uint8Array,
  TypedArrayPrototypeSubarray,
  WeakSetPrototypeAdd,
} = primordials;
const {
  op_edge_html_call,
  op_edge_html_close,
  op_edge_html_end,
  op_edge_html_new,
  op_edge_html_return,
  op_edge_html_selector,
  op_edge_html_write,
} = core.ops;

const streams = core.loadExtScript("ext:deno_web/06_streams.js");
const headersMod = core.loadExtScript("ext:deno_fetch/20_headers.js");

// Operation codes: `tokens::op` in bindings/web/src/html_rewriter/tokens.rs.
const TAG_NAME = 0;
const SET_TAG_NAME = 1;
const ATTRIBUTES = 2;
const GET_ATTRIBUTE = 3;
const HAS_ATTRIBUTE = 4;
const SET_ATTRIBUTE = 5;
const REMOVE_ATTRIBUTE = 6;
const NAMESPACE_URI = 7;
const REMOVED = 8;
const BEFORE = 11;
const AFTER = 12;
const PREPEND = 13;
const APPEND = 14;
const SET_INNER_CONTENT = 15;
const REPLACE = 16;
const REMOVE = 17;
const REMOVE_AND_KEEP_CONTENT = 18;
const ON_END_TAG = 19;
const TEXT = 20;
const SET_TEXT = 21;
const LAST_IN_TEXT_NODE = 22;
const NAME = 23;
const SET_NAME = 24;
const PUBLIC_ID = 25;
const SYSTEM_ID = 26;

// Event kinds (`session::Kind`): 0-2 are an `on` call's handlers and 3-6 an `onDocument`
// call's, in the order of `ELEMENT_HANDLERS` and `DOCUMENT_HANDLERS` below; 7 an end tag's.
const DOCTYPE = 3;
const END_TAG = 7;

/** The most bytes given to lol_html in one op (so one op's time stays short). */
const PIECE = 64 * 1024;

let invoke;
let sessionOf;

/** A token given to a handler; its methods are ops on lol_html's token. */
class ContentToken {
  #session;
  #epoch;
  constructor(session, epoch) {
    this.#session = session;
    this.#epoch = epoch;
  }
  static {
    invoke = (token, op, a = "", b = "", html = false, n = 0) =>
      op_edge_html_call(token.#session.rid, token.#epoch, op, a, b, html, n);
    sessionOf = (token) => token.#session;
  }
}

/**
 * Whether content given to a token method is a stream (a `ReadableStream`, or a `Response`
 * whose body is used): Workers inserts its text once read.
 */
function isStreamed(content) {
  return ObjectPrototypeIsPrototypeOf(streams.ReadableStreamPrototype, content) ||
    ObjectPrototypeIsPrototypeOf(Response.prototype, content);
}

/** The text of content given to a token method (`{ html: true }` inserts it as HTML). */
function contentText(content) {
  return typeof content === "string" ? content : String(content);
}

/** Reads streamed content to text (UTF-8). */
function readContent(content) {
  const response = ObjectPrototypeIsPrototypeOf(Response.prototype, content)
    ? content
    : new Response(content);
  return response.text();
}

/**
 * Applies a content method: at once for text; for a stream, once it has been read: the
 * handler's token stays valid until then, since the rewriter waits for `session.deferred`
 * before going on (and, to keep the order of calls, every later content call of that handler
 * after it).
 */
function insert(token, op, content, options) {
  const html = isHtml(options);
  const session = sessionOf(token);
  if (session.deferred === null && !isStreamed(content)) {
    invoke(token, op, contentText(content), "", html);
    return;
  }
  const text = isStreamed(content) ? readContent(content) : contentText(content);
  const previous = session.deferred ?? PromiseResolve();
  const next = PromisePrototypeThen(previous, async () => {
    invoke(token, op, await text, "", html);
  });
  // Awaited by the rewriter; if the handler failed first, its rejection is nobody's.
  PromisePrototypeThen(next, undefined, () => {});
  session.deferred = next;
}

function isHtml(options) {
  return options !== undefined && options !== null && !!options.html;
}

/**
 * Gives `Class` the token methods named in `ops` (`[name, op]`): each takes content (and
 * `{ html }`), or nothing for `remove`-like ones, and returns the token, as on Workers.
 */
function tokenMethods(Class, ops) {
  for (let i = 0; i < ops.length; i++) {
    const { 0: name, 1: op, 2: takesContent } = ops[i];
    const method = takesContent
      ? {
        [name](content, options) {
          insert(this, op, content, options);
          return this;
        },
      }[name]
      : {
        [name]() {
          invoke(this, op);
          return this;
        },
      }[name];
    ObjectDefineProperty(Class.prototype, name, {
      __proto__: null,
      value: method,
      writable: true,
      configurable: true,
    });
  }
}

class Element extends ContentToken {
  get tagName() {
    return invoke(this, TAG_NAME);
  }
  set tagName(name) {
    invoke(this, SET_TAG_NAME, String(name));
  }
  get attributes() {
    return ArrayPrototypeSymbolIterator(invoke(this, ATTRIBUTES));
  }
  get namespaceURI() {
    return invoke(this, NAMESPACE_URI);
  }
  get removed() {
    return invoke(this, REMOVED);
  }
  getAttribute(name) {
    return invoke(this, GET_ATTRIBUTE, String(name));
  }
  hasAttribute(name) {
    return invoke(this, HAS_ATTRIBUTE, String(name));
  }
  setAttribute(name, value) {
    invoke(this, SET_ATTRIBUTE, String(name), String(value));
    return this;
  }
  removeAttribute(name) {
    invoke(this, REMOVE_ATTRIBUTE, String(name));
    return this;
  }
  onEndTag(handler) {
    if (typeof handler !== "function") {
      throw new TypeError("Failed to execute 'onEndTag' on 'Element': the handler is not a function.");
    }
    const session = sessionOf(this);
    const id = session.nextEndTag++;
    invoke(this, ON_END_TAG, "", "", false, id);
    MapPrototypeSet(session.endTags, id, handler);
  }
}
tokenMethods(Element, [
  ["before", BEFORE, true],
  ["after", AFTER, true],
  ["prepend", PREPEND, true],
  ["append", APPEND, true],
  ["setInnerContent", SET_INNER_CONTENT, true],
  ["replace", REPLACE, true],
  ["remove", REMOVE, false],
  ["removeAndKeepContent", REMOVE_AND_KEEP_CONTENT, false],
]);

class EndTag extends ContentToken {
  get name() {
    return invoke(this, NAME);
  }
  set name(name) {
    invoke(this, SET_NAME, String(name));
  }
}
tokenMethods(EndTag, [["before", BEFORE, true], ["after", AFTER, true], ["remove", REMOVE, false]]);

/** What comments and text chunks share. */
class CharacterToken extends ContentToken {
  get removed() {
    return invoke(this, REMOVED);
  }
}
tokenMethods(CharacterToken, [
  ["before", BEFORE, true],
  ["after", AFTER, true],
  ["replace", REPLACE, true],
  ["remove", REMOVE, false],
]);

class Comment extends CharacterToken {
  get text() {
    return invoke(this, TEXT);
  }
  set text(text) {
    invoke(this, SET_TEXT, String(text));
  }
}

class Text extends CharacterToken {
  get text() {
    return invoke(this, TEXT);
  }
  get lastInTextNode() {
    return invoke(this, LAST_IN_TEXT_NODE);
  }
}

class Doctype extends ContentToken {
  get name() {
    return invoke(this, NAME);
  }
  get publicId() {
    return invoke(this, PUBLIC_ID);
  }
  get systemId() {
    return invoke(this, SYSTEM_ID);
  }
  get removed() {
    return invoke(this, REMOVED);
  }
}
tokenMethods(Doctype, [["remove", REMOVE, false]]);

class DocumentEnd extends ContentToken {}
tokenMethods(DocumentEnd, [["append", APPEND, true]]);

/**
 * The methods of an `on` handler object, then of an `onDocument` one, each with the class of the
 * token it is given. Their order is the events' (`session::Kind`) and the handler bits'
 * (`session::has`: the method at position i is bit `1 << i`).
 */
const ELEMENT_HANDLERS = [["element", Element], ["comments", Comment], ["text", Text]];
const DOCUMENT_HANDLERS = [
  ["doctype", Doctype],
  ["comments", Comment],
  ["text", Text],
  ["end", DocumentEnd],
];

/** A handler object's method `name`: a function, or undefined; anything else is refused. */
function method(handlers, name, where) {
  const fn = handlers[name];
  if (fn === undefined || fn === null) return undefined;
  if (typeof fn !== "function") {
    throw new TypeError(`Failed to execute '${where}' on 'HTMLRewriter': ${name} is not a function.`);
  }
  return fn;
}

function handlerObject(handlers, where) {
  if (handlers === null || (typeof handlers !== "object" && typeof handlers !== "function")) {
    throw new TypeError(
      `Failed to execute '${where}' on 'HTMLRewriter': parameter 2 is not of type 'object'.`,
    );
  }
  return handlers;
}

/** A handler object's methods of `kinds` (in their order) and the bits of those it has. */
function handlersOf(handlers, kinds, where) {
  const fns = [];
  let bits = 0;
  for (let i = 0; i < kinds.length; i++) {
    const fn = method(handlers, kinds[i][0], where);
    ArrayPrototypePush(fns, fn);
    if (fn !== undefined) bits |= 1 << i;
  }
  return { handlers, fns, bits };
}

// A transform whose new body is dropped unread gives its rewriter back when collected.
const abandoned = new SafeFinalizationRegistry((rid) => op_edge_html_close(rid));

function bytesOf(chunk) {
  if (ObjectPrototypeIsPrototypeOf(Uint8Array.prototype, chunk)) return chunk;
  if (ArrayBufferIsView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  if (ObjectPrototypeToString(chunk) === "[object ArrayBuffer]") {
    return new Uint8Array(chunk, 0, ArrayBufferPrototypeGetByteLength(chunk));
  }
  if (typeof chunk === "string") {
    throw new TypeError("This TransformStream is being used as a byte stream, but received a string on its writable side. If you wish to write a string, you'll probably want to explicitly UTF-8-encode it with TextEncoder.");
  }
  throw new TypeError("HTMLRewriter: the response body gave a chunk that is not bytes");
}

class HTMLRewriter {
  #elements = [];
  #documents = [];

  on(selector, handlers) {
    selector = String(selector);
    handlerObject(handlers, "on");
    op_edge_html_selector(selector);
    ArrayPrototypePush(this.#elements, {
      selector,
      ...handlersOf(handlers, ELEMENT_HANDLERS, "on"),
    });
    return this;
  }

  onDocument(handlers) {
    handlerObject(handlers, "onDocument");
    ArrayPrototypePush(this.#documents, handlersOf(handlers, DOCUMENT_HANDLERS, "onDocument"));
    return this;
  }

  transform(response) {
    if (!ObjectPrototypeIsPrototypeOf(Response.prototype, response)) {
      throw new TypeError(
        "Failed to execute 'transform' on 'HTMLRewriter': parameter 1 is not of type 'Response'.",
      );
    }
    const init = {
      status: response.status,
      statusText: response.statusText,
      headers: new headersMod.Headers(response.headers),
    };
    const body = response.body;
    // A response without a body is given back as it is: no handler runs (as on Workers).
    if (body === null) return new Response(null, init);
    let reader = body.getReader();
    const elements = [];
    for (let i = 0; i < this.#elements.length; i++) {
      ArrayPrototypePush(elements, [this.#elements[i].selector, this.#elements[i].bits]);
    }
    const documents = [];
    for (let i = 0; i < this.#documents.length; i++) {
      ArrayPrototypePush(documents, this.#documents[i].bits);
    }
    const contentType = response.headers.get("content-type") ?? "";
    // The rewriter is made when the new body is first read: a transformed response that is
    // never read costs nothing but its JavaScript objects.
    const session = {
      rid: undefined,
      endTags: new SafeMap(),
      nextEndTag: 0,
      elements: ArrayPrototypeSlice(this.#elements),
      documents: ArrayPrototypeSlice(this.#documents),
      // Whether the step being driven gave the new body something.
      enqueued: false,
      // Content calls of the running handler waiting for streamed content (`insert`).
      deferred: null,
    };
    const token = {};
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (session.rid === undefined) return;
      abandoned.unregister(token);
      op_edge_html_close(session.rid);
    };
    const start = () => {
      session.rid = op_edge_html_new(elements, documents, contentType);
      abandoned.register(out, session.rid, token);
    };

    // Runs the handlers a step asks for, each to its end; gives the output to `controller`.
    const drive = async (step, controller) => {
      for (;;) {
        if (step[0] !== null) {
          controller.enqueue(step[0]);
          session.enqueued = true;
        }
        const event = step[1];
        if (event === null) return step[2];
        const { 0: kind, 1: index, 2: epoch } = event;
        let fn;
        let self;
        let tokenObject;
        if (kind === END_TAG) {
          fn = MapPrototypeGet(session.endTags, index);
          MapPrototypeDelete(session.endTags, index);
          self = undefined;
          tokenObject = new EndTag(session, epoch);
        } else {
          const forDocument = kind >= DOCTYPE;
          const on = (forDocument ? session.documents : session.elements)[index];
          const which = forDocument ? kind - DOCTYPE : kind;
          const Token = (forDocument ? DOCUMENT_HANDLERS : ELEMENT_HANDLERS)[which][1];
          fn = on.fns[which];
          self = on.handlers;
          tokenObject = new Token(session, epoch);
        }
        const result = ReflectApply(fn, self, [tokenObject]);
        if (result !== null && typeof result === "object" && typeof result.then === "function") {
          await result;
        }
        // Streamed content the handler inserted goes in before the rewriter goes on.
        while (session.deferred !== null) {
          const deferred = session.deferred;
          await deferred;
          if (session.deferred === deferred) session.deferred = null;
        }
        step = op_edge_html_return(session.rid);
      }
    };

    const source = {
      async pull(controller) {
        session.enqueued = false;
        try {
          if (session.rid === undefined) start();
          const rid = session.rid;
          for (;;) {
            if (reader === null) {
              if (await drive(op_edge_html_end(rid), controller)) {
                finish();
                controller.close();
              }
              return;
            }
            const { value, done } = await reader.read();
            if (done) {
              reader = null;
              continue;
            }
            const bytes = bytesOf(value);
            if (bytes.byteLength === 0) continue;
            for (let at = 0; at < bytes.byteLength; at += PIECE) {
              const piece = TypedArrayPrototypeSubarray(bytes, at, at + PIECE);
              await drive(op_edge_html_write(rid, piece), controller);
            }
            // Once the new body has something, wait for it to be read.
            if (session.enqueued) return;
          }
        } catch (err) {
          finish();
          if (reader !== null) {
            PromisePrototypeThen(reader.cancel(err), undefined, () => {});
            reader = null;
          }
          throw err;
        }
      },
      cancel(reason) {
        finish();
        if (reader !== null) {
          const pending = reader.cancel(reason);
          reader = null;
          return pending;
        }
      },
    };
    const out = new streams.ReadableStream(source, { highWaterMark: 0 });
    // Its Content-Length (if any) was the original body's: it is not sent.
    WeakSetPrototypeAdd(unsizedBodies, out);
    return new Response(out, init);
  }
}

export { HTMLRewriter };
