//! `hello`: the smallest handler (`hello.js`, a fixed text response) on edge, deno and workerd;
//! requests/s, p50 and p99 under `wrk -t1` at 32 and 256 connections. `bare-hyper` (`bare.rs`,
//! a server that does no work at all) runs in the same interleaved rounds: the ceiling of this
//! load on this machine.

use std::path::Path;

use crate::report::Report;
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, bare, process, process::Server};

/// The handler, the same file for every system.
pub const SOURCE: &str = include_str!("hello.js");

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let servers = apps::start_all(&settings.edges, dir, SOURCE, "");
    let mut ceiling = process::bare_hyper();
    ceiling.wait_up(wrk::HOST);
    let named: Vec<(&str, &Server)> = servers
        .iter()
        .map(|(n, s)| (*n, s))
        .chain([(bare::SYSTEM, &ceiling)])
        .collect();
    for connections in settings.hello_connections {
        let variant = format!("c{connections}");
        println!("  wrk -t1 -c{connections}, {} s", settings.seconds);
        let load = Load {
            connections,
            seconds: settings.seconds,
            script: None,
        };
        wrk::measure(
            report,
            ("hello", &variant),
            &named,
            load,
            settings.rounds,
            ("req_per_s", "req/s", 1.0),
        );
    }
}
