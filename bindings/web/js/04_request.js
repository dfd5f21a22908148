// Workers' `request.cf`.
//
// An incoming request's `cf` comes from the host the first time it is read (its inner request
// has a `cf` getter: runtime/js/host.js). A request made by the script has the `cf` of its
// `init` (`new Request(url, { cf })`), or else that of the request it copies
// (`new Request(request)`, `request.clone()`). deno_fetch's Request knows nothing of it, so the
// global `Request` stands in for deno_fetch's class (below).
import { core, primordials } from "ext:core/mod.js";

const {
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptor,
  ObjectPrototypeIsPrototypeOf,
  ReflectApply,
  ReflectConstruct,
  RegExpPrototypeExec,
  SafeRegExp,
  SafeWeakMap,
  WeakMapPrototypeGet,
  WeakMapPrototypeHas,
  WeakMapPrototypeSet,
  TypeError,
  TypeErrorPrototype,
} = primordials;

const requestMod = core.loadExtScript("ext:deno_fetch/23_request.js");
const Base = requestMod.Request;

/** The `cf` of requests the script made (by request). */
const given = new SafeWeakMap();

function cfOf(request) {
  if (WeakMapPrototypeHas(given, request)) return WeakMapPrototypeGet(given, request);
  const inner = requestMod.toInnerRequest(request);
  return inner?.cf;
}

ObjectDefineProperty(Base.prototype, "cf", {
  __proto__: null,
  configurable: true,
  enumerable: true,
  get() {
    if (!ObjectPrototypeIsPrototypeOf(Base.prototype, this)) return undefined;
    return cfOf(this);
  },
});

/**
 * Deno's "Invalid URL: 'x'" in Workers' words ("Invalid URL: x"), which scripts and their tests
 * match on; other errors as they are.
 */
export function withWorkersUrlMessage(err) {
  if (!ObjectPrototypeIsPrototypeOf(TypeErrorPrototype, err)) return err;
  const quoted = RegExpPrototypeExec(QUOTED_URL, err.message);
  return quoted === null ? err : new TypeError(`Invalid URL: ${quoted[1]}`);
}
const QUOTED_URL = new SafeRegExp("^Invalid URL: '(.*)'$", "s");

/**
 * The global `Request`: deno_fetch's class, keeping `cf`. A function standing in for the class
 * (same prototype, so `instanceof` and subclasses work) rather than a Proxy of it, which the
 * QuickJS engine does not treat as a constructor.
 */
export function Request(input, init = undefined) {
  if (new.target === undefined) {
    throw new TypeError("Failed to construct 'Request': Please use the 'new' operator.");
  }
  let request;
  try {
    request = ReflectConstruct(Base, [input, init], new.target);
  } catch (err) {
    throw withWorkersUrlMessage(err);
  }
  const fromInit = init !== null && init !== undefined && typeof init === "object"
    ? init.cf
    : undefined;
  if (fromInit !== undefined) {
    WeakMapPrototypeSet(given, request, fromInit);
  } else if (ObjectPrototypeIsPrototypeOf(Base.prototype, input)) {
    const copied = cfOf(input);
    if (copied !== undefined) WeakMapPrototypeSet(given, request, copied);
  }
  return request;
}
ObjectDefineProperty(Request, "prototype", {
  __proto__: null,
  value: Base.prototype,
  writable: false,
  enumerable: false,
  configurable: false,
});

// A clone keeps its original's `cf`.
const baseClone = Base.prototype.clone;
ObjectDefineProperty(Base.prototype, "clone", {
  __proto__: null,
  ...ObjectGetOwnPropertyDescriptor(Base.prototype, "clone"),
  value: {
    clone() {
      const copy = ReflectApply(baseClone, this, []);
      const cf = cfOf(this);
      if (cf !== undefined) WeakMapPrototypeSet(given, copy, cf);
      return copy;
    },
  }.clone,
});

// `request.constructor === Request` holds for the global.
ObjectDefineProperty(Base.prototype, "constructor", {
  __proto__: null,
  ...ObjectGetOwnPropertyDescriptor(Base.prototype, "constructor"),
  value: Request,
});
