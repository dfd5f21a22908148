//! `json`: POST a fixed 4 KB JSON body (`json.lua`); the handler (`json.js`) parses it with
//! `request.json()`, reads it and answers `Response.json` of a small summary. Requests/s, p50
//! and p99 under `wrk -t1 -c32` on edge, deno and workerd.

use std::path::Path;

use crate::report::Report;
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, process::Server};

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let servers = apps::start_all(&settings.edges, dir, include_str!("json.js"), "");
    let named: Vec<(&str, &Server)> = servers.iter().map(|(n, s)| (*n, s)).collect();
    let script = crate::suite_dir().join("json.lua");
    let connections = settings.connections;
    let variant = format!("c{connections}");
    println!(
        "  wrk -t1 -c{connections}, {} s, POST 4096-byte JSON",
        settings.seconds
    );
    let load = Load {
        connections,
        seconds: settings.seconds,
        script: Some(&script),
    };
    wrk::measure(
        report,
        ("json", &variant),
        &named,
        load,
        settings.rounds,
        ("req_per_s", "req/s", 1.0),
    );
}
