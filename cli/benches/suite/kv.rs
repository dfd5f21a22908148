//! `kv`: KV throughput through a JavaScript handler, edge (redb, durable group commit) against
//! Deno KV's local backend (`deno serve --unstable-kv`, SQLite) running the same logic
//! (`kv/edge.js`, `kv/deno.ts`); workerd has no local KV to compare. One app, one isolate on
//! each side, `wrk -t1 -c32`, 10,000 keys filled first:
//!
//! - `get`: one `get` of a random existing key per request (`kv/get.lua`);
//! - `get10`: ten `get`s per request (`Promise.all`), counted as gets/s (`kv/get10.lua`);
//! - `put`: one `put` of a fresh key per request; a 2xx means the write is durable (`kv/put.lua`).

use std::path::Path;

use crate::process::Server;
use crate::report::Report;
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, http};

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
    let (edges, deno) = apps::edge_nodes_and_deno_kv(settings, dir, &kv_dir, EDGE_TOML);

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
