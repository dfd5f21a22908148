//! Node.js APIs under `compatibility_flags = ["nodejs_compat"]`, through the real binary: the
//! modules Workers provides answer as `wrangler dev` answered (tests/fixtures/nodejs-compat),
//! the flags and dates decide as on Workers, and nothing reaches the host.

use std::time::Duration;

use crate::harness::{
    Edge, client, differences_from, edge_command, expected, get_json, get_text, scratch,
};

/// An app folder with `edge.toml` (name "n", main index.js, the given extra lines) and files.
fn app(name: &str, toml: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"n\"\nmain = \"index.js\"\n{toml}"),
    )
    .unwrap();
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const COMPAT: &str =
    "compatibility_date = \"2025-06-01\"\ncompatibility_flags = [\"nodejs_compat\"]\n";

#[tokio::test]
async fn node_modules_answer_as_on_workers() {
    let edge = Edge::dev("nodejs-compat");
    let failures = differences_from(&edge, &expected("nodejs-compat")).await;
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        edge.logs()
    );
}

/// `node:fs`, `node:net`, `node:child_process`: refused at load with what to do instead, never
/// reached; the app's other modules and the node carry on.
#[tokio::test]
async fn modules_that_would_reach_the_host_are_refused_by_name() {
    for (specifier, want) in [
        (
            "node:fs",
            "node:fs is not supported on edge (it would reach the host)",
        ),
        (
            "net",
            "node:net is not supported on edge (it would reach the host)",
        ),
        (
            "node:child_process",
            "node:child_process is not supported on edge",
        ),
        ("node:nope", "no Node.js built-in module node:nope"),
    ] {
        let dir = app(
            "node-refused",
            COMPAT,
            &[(
                "index.js",
                &format!(
                    "import x from {specifier:?};\nexport default {{ fetch() {{ return new Response(String(x)) }} }};\n"
                ),
            )],
        );
        let out = edge_command(&["check", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{specifier}: {stderr}");
        assert!(stderr.contains(want), "{specifier}: {stderr}");
        assert!(
            stderr.contains("index.js:1"),
            "{specifier}: where: {stderr}"
        );
    }
    // Asked for at run time: the import fails, the request is answered, the isolate serves on.
    let dir = app(
        "node-refused-dynamic",
        COMPAT,
        &[
            (
                "index.js",
                r#"import { createRequire } from "./req.cjs";
export default {
  async fetch() {
    const out = {};
    for (const name of ["node:fs", "node:net", "node:child_process", "node:os", "node:vm"]) {
      try { await import(name); out[name] = "imported"; } catch (e) { out[name] = e.message; }
    }
    out.required = createRequire();
    return Response.json(out);
  },
};
"#,
            ),
            (
                "req.cjs",
                "exports.createRequire = () => { try { require('child_process'); return 'required'; } catch (e) { return e.message; } };\n",
            ),
        ],
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    for name in [
        "node:fs",
        "node:net",
        "node:child_process",
        "node:os",
        "node:vm",
    ] {
        let message = got[name].as_str().unwrap_or_default();
        assert!(
            message.contains("is not supported on edge"),
            "{name}: {got}"
        );
    }
    let required = got["required"].as_str().unwrap();
    assert!(
        required.starts_with("Cannot find module 'child_process'")
            && required.contains("not fs, net, child_process"),
        "{required}"
    );
    let again = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(again, got);
}

/// What an app sees of the host through Node's APIs: nothing. `process` tells an isolate's
/// story, not the node's; the host's environment stays out of `process.env`; the calls that
/// would act on the host throw; there is no `Deno` anywhere the app can look.
#[tokio::test]
async fn the_host_is_out_of_reach_through_node_apis() {
    let dir = app(
        "node-host",
        &format!("{COMPAT}[vars]\nMINE = \"mine\"\n"),
        &[(
            "index.js",
            r#"import process from "node:process";
import { Buffer } from "node:buffer";
const topLevel = { deno: typeof Deno, bootstrap: typeof __bootstrap };
function attempt(f) {
  try { const v = f(); return v === undefined ? "returned" : typeof v === "string" ? v : "returned " + typeof v; } catch (e) { return "threw"; }
}
export default {
  async fetch() {
    return Response.json({
      topLevel,
      deno: typeof Deno,
      envKeys: Object.keys(process.env),
      path: process.env.PATH ?? null,
      home: process.env.HOME ?? null,
      cwd: process.cwd(),
      exit: attempt(() => process.exit(1)),
      kill: attempt(() => process.kill(1)),
      dlopen: attempt(() => process.dlopen({}, "/lib/x86_64-linux-gnu/libc.so.6")),
      binding: attempt(() => process.binding("fs")),
      builtin: [typeof process.getBuiltinModule("buffer").Buffer, typeof process.getBuiltinModule("node:fs"), typeof process.getBuiltinModule("module")],
      rawDebug: attempt(() => process._rawDebug("to the app's log")),
      memory: attempt(() => process.memoryUsage().rss),
      buffer: Buffer.from("still works").toString("base64"),
    });
  },
};
"#,
        )],
    );
    // The host's environment (PATH, HOME, …) is not the app's.
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got["topLevel"],
        serde_json::json!({ "deno": "undefined", "bootstrap": "undefined" }),
        "{got}"
    );
    assert_eq!(got["deno"], "undefined");
    assert_eq!(got["envKeys"], serde_json::json!(["MINE"]), "{got}");
    assert_eq!(got["path"], serde_json::Value::Null);
    assert_eq!(got["home"], serde_json::Value::Null);
    assert_eq!(got["cwd"], "/");
    assert_eq!(got["memory"], "returned number");
    for call in ["exit", "kill", "dlopen", "binding"] {
        assert_eq!(got[call], "threw", "{call}: {got}");
    }
    assert_eq!(got["buffer"], "c3RpbGwgd29ya3M=");
    assert_eq!(
        got["builtin"],
        serde_json::json!(["function", "undefined", "undefined"])
    );
    assert_eq!(got["rawDebug"], "returned");
    edge.wait_for_event("to the app's log", Duration::from_secs(2));
    // The node is still there to answer.
    let again = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(again["buffer"], "c3RpbGwgd29ya3M=");
}

/// Without the flag, `node:*` imports are load errors that say what to add, and there are no
/// Node globals; `nodejs_als` gives `node:async_hooks` alone.
#[tokio::test]
async fn without_the_flag_there_is_no_node() {
    let dir = app(
        "node-off",
        "compatibility_date = \"2025-06-01\"\n",
        &[(
            "index.js",
            "import { Buffer } from \"node:buffer\";\nexport default { fetch() { return new Response(typeof Buffer) } };\n",
        )],
    );
    let out = edge_command(&["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Node.js built-in modules need compatibility_flags = [\"nodejs_compat\"]"),
        "{stderr}"
    );
    let dir = app(
        "node-als",
        "compatibility_date = \"2025-06-01\"\ncompatibility_flags = [\"nodejs_als\"]\n",
        &[(
            "index.js",
            r#"import { AsyncLocalStorage } from "node:async_hooks";
const als = new AsyncLocalStorage();
export default {
  async fetch() {
    let buffer;
    try { await import("node:buffer"); buffer = "imported"; } catch (e) { buffer = e.message; }
    const store = await als.run("kept", async () => { await null; return als.getStore(); });
    return Response.json({ store, buffer, globals: [typeof Buffer, typeof process, typeof global] });
  },
};
"#,
        )],
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(got["store"], "kept", "{got}");
    assert_eq!(
        got["globals"],
        serde_json::json!(["undefined", "undefined", "undefined"])
    );
    assert!(
        got["buffer"]
            .as_str()
            .unwrap()
            .contains("only node:async_hooks is available with the nodejs_als flag"),
        "{got}"
    );
}

/// The compatibility date decides as on Workers (checked under `wrangler dev`): before
/// 2024-09-23 only `node:` names and no globals; from then `Buffer`, `process` and `global`
/// and bare names; from 2025-04-01 `process.env` holds the app's vars (numbers as text).
#[tokio::test]
async fn the_compatibility_date_decides_globals_bare_names_and_process_env() {
    let script = r#"import nodeProcess from "node:process";
export default {
  async fetch() {
    let bare;
    try { bare = typeof (await import("events")).EventEmitter; } catch (e) { bare = "refused"; }
    return Response.json({
      globals: [typeof Buffer, typeof process, typeof global],
      env: nodeProcess.env,
      bare,
    });
  },
};
"#;
    let cases = [
        (
            "2024-09-22",
            serde_json::json!({ "globals": ["undefined", "undefined", "undefined"], "env": {}, "bare": "refused" }),
        ),
        (
            "2024-09-23",
            serde_json::json!({ "globals": ["function", "object", "object"], "env": {}, "bare": "function" }),
        ),
        (
            "2025-04-01",
            serde_json::json!({ "globals": ["function", "object", "object"], "env": { "A": "x", "N": "3" }, "bare": "function" }),
        ),
    ];
    for (date, want) in cases {
        let dir = app(
            "node-dates",
            &format!(
                "compatibility_date = \"{date}\"\ncompatibility_flags = [\"nodejs_compat\"]\n[vars]\nA = \"x\"\nN = 3\n"
            ),
            &[("index.js", script)],
        );
        let edge = Edge::dev_dir(&dir, &[]);
        let got = get_json(&client(), &edge.url("/"), None).await;
        assert_eq!(got, want, "{date}\n{}", edge.logs());
    }
}

/// CommonJS packages `require` the built-ins by their bare names and by `node:` names.
#[tokio::test]
async fn commonjs_requires_the_builtins() {
    let dir = app(
        "node-cjs",
        COMPAT,
        &[
            (
                "index.js",
                "import lib from \"./lib.cjs\";\nexport default { fetch() { return Response.json(lib()) } };\n",
            ),
            (
                "lib.cjs",
                r#"const { Buffer } = require("buffer");
const crypto = require("node:crypto");
const EventEmitter = require("events");
const { promisify } = require("util");
module.exports = () => [
  Buffer.from("cjs").toString("hex"),
  crypto.createHash("sha1").update("cjs").digest("hex"),
  typeof EventEmitter,
  typeof new EventEmitter().on,
  typeof promisify,
];
"#,
            ),
        ],
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        serde_json::json!([
            "636a73",
            "5b8e8e65c61f699b521b53c2a2f7d2bd2465d9fc",
            "function",
            "function",
            "function"
        ]),
        "{}",
        edge.logs()
    );
}

/// `AsyncLocalStorage` shares the async context edge tracks invocations with: fetches made
/// inside `als.run` still count against their own invocation, which is answered
/// `503 subrequest-limit` when they go past it (were the context lost, they would count
/// against the isolate's orphan allowance and the request would not be stopped).
#[tokio::test]
async fn async_local_storage_keeps_the_invocation_for_limits() {
    let dir = app(
        "node-als-limits",
        &format!("{COMPAT}[limits]\nsubrequests = 1\n"),
        &[(
            "index.js",
            r#"import { AsyncLocalStorage } from "node:async_hooks";
const als = new AsyncLocalStorage();
export default {
  async fetch() {
    return als.run({ user: "u1" }, async () => {
      await null;
      for (let i = 0; i < 2; i++) {
        try { await fetch("http://127.0.0.1:9/"); } catch {}
      }
      return new Response(als.getStore().user);
    });
  },
};
"#,
        )],
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let res = client().get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 503, "{}", edge.logs());
    assert_eq!(res.headers()["edge-error"], "subrequest-limit");
}

/// Work done for an app through Node's APIs is the app's: an endless `pbkdf2` on the blocking
/// pool is stopped by the CPU limit, and an inflated gzip bomb by the memory limit; the node
/// serves on.
#[tokio::test]
async fn node_work_is_charged_to_the_app() {
    // Inflating takes CPU too: the memory case has CPU to spare.
    for (path, limits, limit) in [
        ("/pbkdf2", "cpu_ms = 50", "cpu"),
        ("/bomb", "cpu_ms = 20000\nmemory_mb = 64", "memory"),
    ] {
        let dir = app(
            "node-charged",
            &format!("{COMPAT}[limits]\n{limits}\n"),
            &[(
                "index.js",
                r#"import crypto from "node:crypto";
import zlib from "node:zlib";
export default {
  async fetch(request) {
    const what = new URL(request.url).pathname;
    if (what === "/pbkdf2") {
      await new Promise((resolve, reject) =>
        crypto.pbkdf2("p", "s", 50_000_000, 32, "sha512", (e, k) => (e ? reject(e) : resolve(k))));
      return new Response("derived");
    }
    if (what === "/bomb") {
      const bomb = zlib.gzipSync(Buffer.alloc(16 << 20));
      const parts = [];
      for (let i = 0; i < 64; i++) parts.push(zlib.gunzipSync(bomb));
      return new Response(String(parts.length));
    }
    return new Response("ok");
  },
};
"#,
            )],
        );
        let edge = Edge::dev_dir(&dir, &[]);
        let c = client();
        let res = tokio::time::timeout(Duration::from_secs(60), c.get(edge.url(path)).send())
            .await
            .expect("answered")
            .unwrap();
        let status = res.status();
        let code = res
            .headers()
            .get("edge-error")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(status, 503, "{path}: {}", edge.logs());
        assert_eq!(
            code.as_deref(),
            Some(format!("{limit}-limit").as_str()),
            "{path}"
        );
        assert_eq!(get_text(&c, &edge.url("/"), None).await, "ok");
    }
}

/// On a node, `nodejs_compat` is the operator's to grant, by app name (`edge dev` and `edge
/// check` grant it: the developer runs their own code); an app's own config cannot.
#[tokio::test]
async fn on_a_node_nodejs_compat_needs_the_operators_grant() {
    let apps = scratch("node-grant");
    let dir = app(
        "node-grant-app",
        COMPAT,
        &[(
            "index.js",
            "import { Buffer } from \"node:buffer\";\nexport default { fetch() { return new Response(Buffer.from(\"granted\").toString(\"hex\")) } };\n",
        )],
    );
    crate::harness::copy_dir(&dir, &apps.join("nodeapp"));
    std::fs::write(
        apps.join("nodeapp/edge.toml"),
        format!("name = \"nodeapp\"\nmain = \"index.js\"\n{COMPAT}"),
    )
    .unwrap();
    let edge = Edge::serve(&apps, &[]);
    let res = client()
        .get(edge.url("/"))
        .header("host", "nodeapp.localhost")
        .send()
        .await
        .unwrap();
    // A node keeps load errors in its log (clients see only that the app failed to load).
    assert_eq!(res.status(), 503);
    edge.wait_for_event(
        "`nodejs_compat` is not granted by the node",
        Duration::from_secs(2),
    );
    edge.wait_for_event(
        "this node does not grant the app nodejs_compat",
        Duration::from_secs(2),
    );
    drop(edge);
    let edge = Edge::serve(&apps, &["--allow-nodejs-compat", "nodeapp"]);
    let res = client()
        .get(edge.url("/"))
        .header("host", "nodeapp.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", edge.logs());
    assert_eq!(res.text().await.unwrap(), "6772616e746564");
}

/// A `Buffer` whose `length` lies made deno_node's compare op slice past the buffer and panic,
/// which aborted the whole node: edge's checked op throws a `RangeError` instead.
#[tokio::test]
async fn a_lying_buffer_length_is_a_range_error_not_a_crash() {
    let dir = app(
        "node-lying-length",
        COMPAT,
        &[(
            "index.js",
            r#"import { Buffer } from "node:buffer";
export default {
  fetch(request) {
    const a = Buffer.from("abc");
    try {
      if (new URL(request.url).pathname === "/lie") {
        Object.defineProperty(a, "length", { value: 1 << 20 });
        return new Response(String(a.compare(Buffer.from("abd"))));
      }
      return new Response(String(a.compare(Buffer.from("abd"), 0, 3, 0, 2)));
    } catch (e) {
      return new Response(e.name);
    }
  },
};
"#,
        )],
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let c = client();
    assert_eq!(get_text(&c, &edge.url("/lie"), None).await, "RangeError");
    // `compare(target, targetStart, targetEnd, sourceStart, sourceEnd)`: "ab" before "abd".
    assert_eq!(get_text(&c, &edge.url("/"), None).await, "-1");
}
