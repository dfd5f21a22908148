//! `cold_start`: how long a never-seen app's first request takes.
//!
//! - edge `new_app`: one `edge serve` with 2×N fresh apps (the hello handler), already
//!   listening; N apps' first requests (connect to the last byte, `Connection: close`) arriving
//!   paced, one every `cold_gap_ms` after the previous answer (a node taking on new apps at a
//!   steady rate, which its warm pool of pre-started isolates keeps up with); then
//!   `new_app_burst`: the other N apps' first requests back to back (the pool runs dry, and
//!   each new app waits for an isolate to be made); then `warm`: each paced app's second
//!   request.
//! - `new_process` (every system): a fresh process with one app, from spawn to the end of its
//!   first response. Peers have no lazy multi-tenant loading, so this is their cold start and
//!   what edge's `new_app` is compared with. Spawns are interleaved (edge, deno, workerd, …)
//!   after one unmeasured spawn each that fills the caches (edge's snapshot, deno's modules).
//!
//! `runs` hold every single request's (or spawn's) time, so their median is the p50; the p99 is
//! taken over the same list.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::apps::{self, Worker};
use crate::process::{self, Server};
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{hello, http, peers, stats, wrk};

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    new_apps(settings, dir, report);
    new_processes(settings, dir, report);
    report.note(
        "cold_start",
        format!(
            "edge new_app = a fresh app's first request on a running node, new apps arriving one \
             every {} ms after the previous answer; new_app_burst = the same, back to back (the \
             warm pool runs dry); new_process = spawn to first response of a fresh process with \
             one app (peers' only cold start)",
            settings.cold_gap_ms
        ),
    );
}

/// Records `times` (ms) as the p50 (with every value as runs) and p99 of a variant.
fn record(report: &mut Report, variant: &str, system: &'static str, times: Vec<f64>) {
    let p99 = stats::percentile(&times, 99.0);
    println!(
        "  {system:<8} {variant:<12} p50 {:>8.2} ms  p99 {:>8.2} ms  ({} samples)",
        stats::median(&times),
        p99,
        times.len()
    );
    let sample = |metric, runs| Sample {
        scenario: "cold_start",
        variant: variant.to_string(),
        system,
        metric,
        unit: "ms",
        runs,
    };
    report.add(sample("p50_ms", times));
    report.add(sample("p99_ms", vec![p99]));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// edge (each build): fresh apps on one running node: N first requests paced, N back to back,
/// then N second requests.
fn new_apps(settings: &Settings, dir: &Path, report: &mut Report) {
    let apps_dir = dir.join("edge-apps");
    let n = settings.cold_apps;
    for i in 0..2 * n {
        let source = format!("{}// app {i}\n", hello::SOURCE);
        apps::edge_app(&apps_dir, &format!("app{i}"), &source, "");
    }
    for edge in &settings.edges {
        new_apps_on(*edge, settings, dir, report);
    }
}

fn new_apps_on(edge: process::Edge<'_>, settings: &Settings, dir: &Path, report: &mut Report) {
    let apps_dir = dir.join("edge-apps");
    let n = settings.cold_apps;
    let data = dir.join(format!("{}-data", edge.name));
    let node = process::edge(edge, &apps_dir, &data, &apps::edge_cache(dir));
    let host = |i: usize| format!("app{i}.localhost");
    let gap = Duration::from_millis(settings.cold_gap_ms);
    let paced: Vec<f64> = (0..n)
        .map(|i| {
            std::thread::sleep(gap);
            ms(http::timed_get(node.port, &host(i)))
        })
        .collect();
    let burst: Vec<f64> = (n..2 * n)
        .map(|i| ms(http::timed_get(node.port, &host(i))))
        .collect();
    let warm: Vec<f64> = (0..n)
        .map(|i| ms(http::timed_get(node.port, &host(i))))
        .collect();
    record(report, "new_app", edge.name, paced);
    record(report, "new_app_burst", edge.name, burst);
    record(report, "warm", edge.name, warm);
}

/// Every system: spawn to first response of a fresh process, interleaved.
fn new_processes(settings: &Settings, dir: &Path, report: &mut Report) {
    let (deno_bin, workerd_bin) = (peers::deno(), peers::workerd());
    let edge_apps = dir.join("process/edge-apps");
    apps::edge_app(&edge_apps, apps::APP, hello::SOURCE, "");
    let deno_main = dir.join("process/main.js");
    std::fs::write(&deno_main, hello::SOURCE).expect("write deno's main.js");
    let deno_cache = dir.join("process/deno-cache");
    let workerd_dir = dir.join("process/workerd");
    std::fs::create_dir_all(&workerd_dir).expect("create the workerd folder");
    std::fs::write(workerd_dir.join("worker.js"), hello::SOURCE).expect("write worker.js");
    let worker = Worker {
        name: "main".into(),
        module: "worker.js".into(),
        bindings: vec![],
    };
    let config = apps::workerd_config(&workerd_dir, &[worker]);

    let mut spawn = 0;
    let mut time = |system: &str| -> f64 {
        spawn += 1;
        let start = Instant::now();
        let server: Server = match system {
            "deno" => process::deno(&deno_bin, &deno_main, &[], &apps::deno_env(&deno_cache)),
            "workerd" => process::workerd(&workerd_bin, &config),
            edge => {
                let edge = *settings
                    .edges
                    .iter()
                    .find(|e| e.name == edge)
                    .expect("an edge build");
                let data = dir.join(format!("process/edge-data-{spawn}"));
                process::edge(edge, &edge_apps, &data, &apps::edge_cache(dir))
            }
        };
        let response = http::get_when_up(server.port, wrk::HOST, Duration::from_secs(60));
        let elapsed = ms(start.elapsed());
        assert_eq!(
            response.status,
            200,
            "{system}: {response:?}\n{}",
            server.log()
        );
        elapsed
    };
    let systems: Vec<&'static str> = settings
        .edges
        .iter()
        .map(|e| e.name)
        .chain(["deno", "workerd"])
        .collect();
    for system in &systems {
        time(system); // fills the caches; not measured
    }
    let mut times = vec![Vec::new(); systems.len()];
    for _ in 0..settings.cold_spawns {
        for (i, system) in systems.iter().enumerate() {
            times[i].push(time(system));
        }
    }
    for (system, times) in systems.into_iter().zip(times) {
        record(report, "new_process", system, times);
    }
}
