// Copyright the edge authors. Apache-2.0.
// What edge gives for Deno's `node:module` (01_require.js): its CommonJS loader reads files and
// loads native code, so it never loads here. Deno's `process.getBuiltinModule` reaches for it;
// this one returns only the modules the app's flags provide (00_setup.js).
import { internals } from "ext:core/mod.js";

export function getBuiltinModule(id) {
  return internals.edgeNodejs.getBuiltinModule(id);
}

export default { getBuiltinModule };
