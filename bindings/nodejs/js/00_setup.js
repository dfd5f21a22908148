// Copyright the edge authors. Apache-2.0.
// What Deno's Node modules need from their surroundings, and how an app gets them.
//
// deno_node reads a global `Deno` namespace in places (`Deno.build.os`, `Deno.errors.NotFound`,
// `Deno.env.get`). An edge app has no `Deno` global, so each of those files is given a binding
// to this stand-in instead (src/sources.rs): it says what is true of an edge isolate, and
// everything that would reach the host throws.
import { core, internals, primordials } from "ext:core/mod.js";

const {
  Error,
  ObjectAssign,
  ObjectDefineProperty,
  ObjectFreeze,
  ObjectHasOwn,
  Proxy,
  ReflectGet,
  StringPrototypeReplace,
  TypeError,
  globalThis,
} = primordials;

function unavailable(name) {
  return function () {
    throw new TypeError(`${name} is not supported on edge (it would reach the host)`);
  };
}

const errors = { __proto__: null };
for (
  const name of [
    "AddrInUse",
    "AddrNotAvailable",
    "AlreadyExists",
    "BadResource",
    "BrokenPipe",
    "Busy",
    "ConnectionAborted",
    "ConnectionRefused",
    "ConnectionReset",
    "FilesystemLoop",
    "Http",
    "Interrupted",
    "InvalidData",
    "IsADirectory",
    "NetworkUnreachable",
    "NotADirectory",
    "NotCapable",
    "NotConnected",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "TimedOut",
    "UnexpectedEof",
    "WouldBlock",
    "WriteZero",
  ]
) {
  errors[name] = class extends Error {
    constructor(message, options) {
      super(message, options);
      this.name = name;
    }
  };
}

const stand_in = {
  __proto__: null,
  build: ObjectFreeze({
    os: "linux",
    arch: "x86_64",
    target: "x86_64-unknown-linux-gnu",
    vendor: "unknown",
    env: "gnu",
    standalone: false,
  }),
  version: ObjectFreeze({ deno: "2.0.0", v8: "", typescript: "" }),
  errors: ObjectFreeze(errors),
  // The host's environment is not the app's: `process.env` is set from the app's config.
  env: ObjectFreeze({
    get: () => undefined,
    has: () => false,
    toObject: () => ({}),
    set: unavailable("Deno.env.set"),
    delete: unavailable("Deno.env.delete"),
  }),
  pid: 1,
  ppid: 0,
  noColor: true,
  args: [],
  mainModule: "file:///bundle/worker.js",
  execPath: () => "/bundle/edge",
  cwd: () => "/",
  consoleSize: () => ({ columns: 80, rows: 24 }),
  isatty: () => false,
  uid: () => null,
  gid: () => null,
  removeSignalListener: () => {},
};

// Anything else a Deno module asks for is a function that refuses (`Deno.statSync`,
// `Deno.exit`, `Deno.addSignalListener`), so the error says what was tried.
internals.edgeDeno = new Proxy(stand_in, {
  get(target, key) {
    if (ObjectHasOwn(target, key)) return ReflectGet(target, key);
    if (typeof key !== "string") return undefined;
    return unavailable(`Deno.${key}`);
  },
});

function define(name, value) {
  ObjectDefineProperty(globalThis, name, {
    value,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * Sets up an app that has `nodejs_compat`, before its code runs: `process.env` from the app's
 * text vars (`env`, empty when the app's flags do not ask for it to be filled), and when
 * `globals`, the `Buffer`, `process` and `global` globals Workers gives.
 */
function install(env, globals, builtins) {
  provided = builtins;
  // `process.nextTick` queues nothing until enabled (Deno enables it when its runtime starts).
  core.loadExtScript("ext:deno_node/_next_tick.ts").enableNextTick();
  const had = { __proto__: null };
  for (const name of ["Buffer", "process", "global"]) had[name] = ObjectHasOwn(globalThis, name);
  const process = core.createLazyLoader("node:process")().default;
  describeIsolate(process, env);
  if (!globals) {
    // Loading Deno's `node:process` defines the global; before 2024-09-23 Workers has none.
    for (const name of ["Buffer", "process", "global"]) {
      if (!had[name]) delete globalThis[name];
    }
    return;
  }
  define("Buffer", core.createLazyLoader("node:buffer")().Buffer);
  define("process", process);
  define("global", globalThis);
}

/**
 * What `process` says is an isolate's, not the host's, as on Workers: the app's vars for
 * `process.env`, Node 22's version, `/` for the working directory (`chdir` moves it, nothing
 * else), no memory figures, `stdout`/`stderr` that write to the app's log; and the calls that
 * would act on the host throw.
 */
function describeIsolate(process, env) {
  let cwd = "/";
  const set = (name, value) =>
    ObjectDefineProperty(process, name, {
      value,
      writable: true,
      configurable: true,
      enumerable: true,
    });
  set("env", env);
  set("version", "v22.14.0");
  set("versions", ObjectFreeze({ node: "22.14.0" }));
  set("argv", []);
  set("execArgv", []);
  set("cwd", () => cwd);
  set("chdir", (dir) => {
    cwd = core.createLazyLoader("node:path")().posix.resolve(cwd, String(dir));
  });
  set("getBuiltinModule", getBuiltinModule);
  // Deno's writes to the process's stderr; the app's log is where an app's output goes.
  set("_rawDebug", (...args) => globalThis.console.error(...args));
  set("memoryUsage", () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }));
  set("exit", (code) => {
    throw new Error(`The Node.js process.exit(${code ?? ""}) API was called. Canceling the request.`);
  });
  for (const name of ["abort", "binding", "dlopen", "kill", "reallyExit", "setuid", "setgid", "seteuid", "setegid", "setgroups", "umask"]) {
    set(name, unavailable(`process.${name}`));
  }
  let stdout, stderr, stdin;
  const { Writable, Readable } = core.createLazyLoader("node:stream")();
  const toLog = (fd, write) =>
    ObjectAssign(
      new Writable({
        write(chunk, _encoding, callback) {
          write(StringPrototypeReplace(String(chunk), /\n$/, ""));
          callback();
        },
      }),
      { fd, isTTY: false },
    );
  ObjectDefineProperty(process, "stdout", {
    get: () => (stdout ??= toLog(1, (line) => globalThis.console.log(line))),
    configurable: true,
    enumerable: true,
  });
  ObjectDefineProperty(process, "stderr", {
    get: () => (stderr ??= toLog(2, (line) => globalThis.console.error(line))),
    configurable: true,
    enumerable: true,
  });
  ObjectDefineProperty(process, "stdin", {
    get: () => (stdin ??= ObjectAssign(Readable.from([]), { fd: 0, isTTY: false })),
    configurable: true,
    enumerable: true,
  });
}

/** The modules the app's flags provide, by name (`buffer`) and specifier (`node:buffer`). */
let provided = { __proto__: null };

/** `process.getBuiltinModule(id)`: a provided module's exports, else `undefined` (as Node). */
function getBuiltinModule(id) {
  const specifier = provided[String(id)];
  if (specifier === undefined) return undefined;
  const ns = core.createLazyLoader(specifier)();
  return ns.default ?? ns;
}

internals.edgeNodejs = { install, getBuiltinModule };
