// The bindings registry of an isolate: each binding's script says how to make the object for
// its kind (`defineBinding`); the host asks for the app's bindings (`appBindings`), which the
// node hands over as data: [name, kind, index].

import { primordials } from "ext:core/mod.js";
import { op_binding_list } from "ext:core/ops";

const { ArrayPrototypeMap, MapPrototypeGet, MapPrototypeSet, SafeMap, Error } = primordials;

const makers = new SafeMap();

/** Registers `make(index)`, which returns the `env` object for the app's binding of `kind` at `index`. */
export function defineBinding(kind, make) {
  MapPrototypeSet(makers, kind, make);
}

/** The app's bindings, as [name, object] pairs for `env`. */
export function appBindings() {
  return ArrayPrototypeMap(op_binding_list(), ([name, kind, index]) => {
    const make = MapPrototypeGet(makers, kind);
    if (make === undefined) throw new Error(`edge: no script defines bindings of kind ${kind}`);
    return [name, make(index)];
  });
}
