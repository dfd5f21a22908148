//! `cache`: the Cache API through a JavaScript handler, edge (`cache.redb`, group-committed
//! writes) against Deno's Cache API (`deno serve`, SQLite) running the same logic
//! (`cache/edge.js`, `cache/deno.ts`: a named cache, as Deno has no `caches.default`); workerd
//! self-hosted has no cache to compare. One app, one isolate on each side, `wrk -t1 -c32`,
//! 1,000 entries put first:
//!
//! - `match`: one `match` of a random stored entry per request, its body the response
//!   (`cache/match.lua`);
//! - `put`: one `put` of a fresh 1 KiB entry per request, answered once the put resolves
//!   (`cache/put.lua`).

use std::path::Path;

use crate::report::Report;
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, http};

/// The edge app's extra `edge.toml`: room for the fill request.
const EDGE_TOML: &str =
    "\n# Filling 1,000 entries takes one long request.\n[limits]\ncpu_ms = 30000\n";

/// The variants: name, Lua script.
const VARIANTS: [(&str, &str); 2] = [("match", "match.lua"), ("put", "put.lua")];

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let source = crate::suite_dir().join("cache");
    let (edges, deno) = apps::edge_nodes_and_deno_kv(settings, dir, &source, EDGE_TOML);
    let mut named: Vec<(&str, &crate::process::Server)> =
        edges.iter().map(|(n, s)| (*n, s)).collect();
    named.push(("deno", &deno));
    for &(name, server) in &named {
        let fill = http::request(server.port, wrk::HOST, "POST", "/fill?n=1000", b"")
            .unwrap_or_else(|e| panic!("{name} fill: {e}\n{}", server.log()));
        assert!(
            fill.body.contains("filled"),
            "{name} fill failed: {fill:?}\n{}",
            server.log()
        );
        let hit = http::request(server.port, wrk::HOST, "GET", "/match?k=k999", b"")
            .unwrap_or_else(|e| panic!("{name} match: {e}"));
        assert!(
            hit.body.contains("value-999"),
            "{name} match failed: {hit:?}"
        );
    }
    for (variant, script) in VARIANTS {
        let script = source.join(script);
        println!(
            "  {variant}: wrk -t1 -c{}, {} s",
            settings.connections, settings.seconds
        );
        let load = Load {
            connections: settings.connections,
            seconds: settings.seconds,
            script: Some(&script),
        };
        wrk::measure(
            report,
            ("cache", variant),
            &named,
            load,
            settings.rounds,
            ("ops_per_s", "ops/s", 1.0),
        );
    }
}
