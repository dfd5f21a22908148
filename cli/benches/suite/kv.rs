//! `kv`: KV throughput through a JavaScript handler, edge (redb, durable group commit) against
//! Deno KV's local backend (`deno serve --unstable-kv`, SQLite) running the same logic
//! (`kv/edge.js`, `kv/deno.ts`); workerd has no local KV to compare. One app, one isolate on
//! each side, `wrk -t1 -c32`, 10,000 keys filled first:
//!
//! - `get`: one `get` of a random existing key per request (`kv/get.lua`);
//! - `get10`: ten `get`s per request (`Promise.all`), counted as gets/s (`kv/get10.lua`);
//! - `put`: one `put` of a fresh key per request; a 2xx means the write is durable (`kv/put.lua`).

use std::path::Path;

use crate::process::{self, Server};
use crate::report::Report;
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, http, peers};

/// The edge app's extra `edge.toml`: the KV binding, and room for the fill request.
const EDGE_TOML: &str = "\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"bench\"\n\n\
                         # Filling 10,000 keys takes one long request.\n[limits]\ncpu_ms = 30000\n";

/// The variants: name, Lua script, KV operations per request.
const VARIANTS: [(&str, &str, f64); 3] = [
    ("get", "get.lua", 1.0),
    ("get10", "get10.lua", 10.0),
    ("put", "put.lua", 1.0),
];

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let kv_dir = crate::suite_dir().join("kv");
    let apps_dir = dir.join("edge-apps");
    let edge_source = std::fs::read_to_string(kv_dir.join("edge.js")).expect("read kv/edge.js");
    apps::edge_app(&apps_dir, apps::APP, &edge_source, EDGE_TOML);
    let edges: Vec<(&'static str, Server)> = settings
        .edges
        .iter()
        .map(|edge| {
            let data = dir.join(format!("{}-data", edge.name));
            let server = process::edge(*edge, &apps_dir, &data, &apps::edge_cache(dir));
            (edge.name, server)
        })
        .collect();

    let deno_main = dir.join("deno.ts");
    std::fs::copy(kv_dir.join("deno.ts"), &deno_main).expect("copy kv/deno.ts");
    let kv_path = dir.join("deno-kv.sqlite3");
    let deno_cache = dir.join("deno-cache");
    let env = [
        ("KV_PATH", kv_path.as_os_str()),
        ("DENO_DIR", deno_cache.as_os_str()),
    ];
    let flags = [
        "--unstable-kv",
        "--allow-env",
        "--allow-read",
        "--allow-write",
    ];
    let deno = process::deno(&peers::deno(), &deno_main, &flags, &env);

    let mut named: Vec<(&str, &Server)> = edges.iter().map(|(n, s)| (*n, s)).collect();
    named.push(("deno", &deno));
    for &(name, server) in &named {
        let fill = http::request(server.port, wrk::HOST, "POST", "/fill?n=10000", b"")
            .unwrap_or_else(|e| panic!("{name} fill: {e}\n{}", server.log()));
        assert!(
            fill.body.contains("filled"),
            "{name} fill failed: {fill:?}\n{}",
            server.log()
        );
        let get = http::request(server.port, wrk::HOST, "GET", "/get?k=k9999", b"")
            .unwrap_or_else(|e| panic!("{name} get: {e}"));
        assert!(
            get.body.contains("value-9999"),
            "{name} get failed: {get:?}"
        );
    }

    for (variant, script, per_request) in VARIANTS {
        let script = kv_dir.join(script);
        let connections = settings.connections;
        println!(
            "  {variant}: wrk -t1 -c{connections}, {} s",
            settings.seconds
        );
        let load = Load {
            connections,
            seconds: settings.seconds,
            script: Some(&script),
        };
        wrk::measure(
            report,
            ("kv", variant),
            &named,
            load,
            settings.rounds,
            ("ops_per_s", "ops/s", per_request),
        );
    }
}
