// Which invocation (request or event) the running code belongs to, carried through every
// continuation, timer and fetch it starts (the engine's async context), so limits are counted
// against the right one. A variable of the context, not the context itself: the context is
// shared with the app's own `AsyncLocalStorage` (node:async_hooks), and each keeps its value.
import { core } from "ext:core/mod.js";

const current = new core.AsyncVariable();

/** Runs `f()` as invocation `id` (and what it starts), then restores the context. */
export function runAs(id, f) {
  const outer = current.enter(id);
  try {
    return f();
  } finally {
    core.setAsyncContext(outer);
  }
}

/** Makes `id` the running invocation; returns the context to restore with `core.setAsyncContext`. */
export function enterInvocation(id) {
  return current.enter(id);
}

/** The running invocation's id; `undefined` when the code belongs to none. */
export function currentInvocation() {
  return current.get();
}
