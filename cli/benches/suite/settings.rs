//! How long and how large each scenario runs: the full suite or `--quick`.

use serde_json::{Value, json};

use crate::process::Edge;

/// The suite's knobs, fixed for a run and recorded in the report.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether this is the `--quick` variant.
    pub quick: bool,
    /// The edge builds measured: V8 (the default), and QuickJS unless `--v8-only`.
    pub edges: Vec<Edge<'static>>,
    /// Interleaved rounds of every wrk measurement (one run per system per round).
    pub rounds: usize,
    /// Length of one wrk run, in seconds.
    pub seconds: u32,
    /// Connections for the `hello` scenario's variants.
    pub hello_connections: [u32; 2],
    /// Connections for the `json` and `kv` scenarios.
    pub connections: u32,
    /// Fresh apps whose first request the `cold_start` scenario times on one edge node.
    pub cold_apps: usize,
    /// Fresh processes per system whose spawn-to-first-response the `cold_start` scenario times.
    pub cold_spawns: usize,
    /// Pause between two new apps' first requests in `cold_start`'s paced series (ms): new
    /// apps arriving at about 1000 / (this + the request's time) per second.
    pub cold_gap_ms: u64,
    /// Apps served once each by the `density` scenario (edge, workerd).
    pub density_apps: usize,
    /// Rounds of the `density` scenario.
    pub density_rounds: usize,
    /// Idle Deno processes measured by the `density` scenario.
    pub density_deno_processes: usize,
    /// Timed `workload()` calls per round under plain QuickJS-NG in the `cpu` scenario.
    pub cpu_calls: usize,
    /// Saves per system timed by the `reload` scenario.
    pub reload_saves: usize,
}

impl Settings {
    /// The full suite, or the short one for `--quick`.
    pub fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                quick,
                edges: vec![Edge::v8()],
                rounds: 2,
                seconds: 2,
                hello_connections: [32, 256],
                connections: 32,
                cold_apps: 50,
                cold_spawns: 5,
                cold_gap_ms: 50,
                density_apps: 200,
                density_rounds: 1,
                density_deno_processes: 3,
                cpu_calls: 20,
                reload_saves: 10,
            }
        } else {
            Settings {
                quick,
                edges: vec![Edge::v8()],
                rounds: 5,
                seconds: 8,
                hello_connections: [32, 256],
                connections: 32,
                cold_apps: 200,
                cold_spawns: 20,
                cold_gap_ms: 50,
                density_apps: 1000,
                density_rounds: 2,
                density_deno_processes: 5,
                cpu_calls: 100,
                reload_saves: 50,
            }
        }
    }

    /// One line for the console.
    pub fn describe(&self) -> String {
        format!(
            "edge benchmark suite ({}): {} interleaved rounds of {} s per wrk measurement (wrk -t1), \
             {} cold apps, {} spawns per peer, {} apps for density",
            if self.quick { "quick" } else { "full" },
            self.rounds,
            self.seconds,
            self.cold_apps,
            self.cold_spawns,
            self.density_apps
        )
    }

    /// The settings as recorded in the JSON report.
    pub fn to_json(&self) -> Value {
        json!({
            "quick": self.quick,
            "edge_engines": self.edges.iter().map(|e| e.name).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "seconds_per_run": self.seconds,
            "wrk_threads": 1,
            "hello_connections": self.hello_connections,
            "connections": self.connections,
            "cold_start_apps": self.cold_apps,
            "cold_start_spawns": self.cold_spawns,
            "cold_start_gap_ms": self.cold_gap_ms,
            "density_apps": self.density_apps,
            "density_rounds": self.density_rounds,
            "density_deno_processes": self.density_deno_processes,
            "cpu_qjs_calls": self.cpu_calls,
            "reload_saves": self.reload_saves,
        })
    }
}
