// Workers' `request.cf`.
//
// An incoming request's `cf` comes from the host the first time it is read (its inner request
// has a `cf` getter: runtime/js/host.js). A request made by the script has the `cf` of its
// `init` (`new Request(url, { cf })`), or else that of the request it copies
// (`new Request(request)`, `request.clone()`). deno_fetch's Request knows nothing of it, so the
// global `Request` is deno_fetch's class seen through a Proxy, as `Response` is
// (01_response.js).
import { core, primordials } from "ext:core/mod.js";

const {
  ObjectDefineProperty,
  ObjectGetOwnPropertyDescriptor,
  ObjectPrototypeIsPrototypeOf,
  Proxy,
  ReflectApply,
  ReflectConstruct,
  SafeWeakMap,
  WeakMapPrototypeGet,
  WeakMapPrototypeHas,
  WeakMapPrototypeSet,
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

/** The global `Request`: deno_fetch's class, keeping `cf`. */
export const Request = new Proxy(Base, {
  __proto__: null,
  construct(target, args, newTarget) {
    const request = ReflectConstruct(target, args, newTarget);
    const init = args[1];
    const fromInit = init !== null && init !== undefined && typeof init === "object"
      ? init.cf
      : undefined;
    if (fromInit !== undefined) {
      WeakMapPrototypeSet(given, request, fromInit);
    } else if (ObjectPrototypeIsPrototypeOf(Base.prototype, args[0])) {
      const copied = cfOf(args[0]);
      if (copied !== undefined) WeakMapPrototypeSet(given, request, copied);
    }
    return request;
  },
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
