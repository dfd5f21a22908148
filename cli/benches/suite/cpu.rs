//! `cpu`: a CPU-bound handler. `cpu/workload.js` defines `workload()` (JSON, regex and integer
//! work, a few tens of ms on QuickJS-NG) returning a checksum; the handler is that file with a
//! fetch handler appended that answers the checksum. Sequential latency (`wrk -t1 -c1`, p50) on
//! edge (`cpu_ms = 5000`), deno and workerd, and the same `workload()` under plain QuickJS-NG
//! (`qjs/`, through rquickjs): the median of M timed calls after one warm-up call. Each round
//! runs all four in turn. The checksum must be the same everywhere.

use std::path::Path;
use std::process::Command;

use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, http, peers, process::Server, stats};

/// The handler appended to `workload.js` for the servers.
const HANDLER: &str =
    "\nexport default { fetch() { return new Response(String(workload())); } };\n";

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let workload = crate::suite_dir().join("cpu/workload.js");
    let qjs = peers::qjs();
    let (engine, checksum, _) = plain_quickjs(&qjs, &workload, 1);
    report.version("quickjs-ng", engine);
    println!("  plain QuickJS-NG checksum {checksum}");

    let source = std::fs::read_to_string(&workload).expect("read cpu/workload.js") + HANDLER;
    let servers = apps::start_all(&settings.edges, dir, &source, "[limits]\ncpu_ms = 5000\n");
    for (name, server) in &servers {
        let r = http::request(server.port, wrk::HOST, "GET", "/", b"").expect("GET the checksum");
        assert_eq!(r.body.trim(), checksum, "{name} computes another checksum");
    }

    let named: Vec<(&str, &Server)> = servers.iter().map(|(n, s)| (*n, s)).collect();
    let load = Load {
        connections: 1,
        seconds: settings.seconds,
        script: None,
    };
    let mut latency = vec![Vec::new(); named.len()];
    let mut plain = Vec::new();
    for round in 1..=settings.rounds {
        for (i, (name, server)) in named.iter().enumerate() {
            let run = load.run(server);
            println!(
                "  round {round}/{} {name:<8} p50 {:>8.2} ms",
                settings.rounds, run.p50_ms
            );
            latency[i].push(run.p50_ms);
        }
        let (_, _, calls) = plain_quickjs(&qjs, &workload, settings.cpu_calls);
        let ms = stats::median(&calls);
        println!(
            "  round {round}/{} quickjs  p50 {ms:>8.2} ms ({} calls)",
            settings.rounds,
            calls.len()
        );
        plain.push(ms);
    }
    let sample = |system, runs| Sample {
        scenario: "cpu",
        variant: "c1".into(),
        system,
        metric: "latency_ms",
        unit: "ms",
        runs,
    };
    for ((system, _), runs) in named.iter().zip(latency) {
        report.add(sample(system, runs));
    }
    report.add(sample("quickjs", plain));
}

/// Runs the plain QuickJS-NG helper: its engine version, the checksum and each call's ms.
fn plain_quickjs(bin: &Path, workload: &Path, calls: usize) -> (String, String, Vec<f64>) {
    let out = Command::new(bin)
        .arg(workload)
        .arg(calls.to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the QuickJS-NG helper failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut engine = String::new();
    let mut checksum = String::new();
    let mut times = Vec::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("engine", v)) => engine = v.trim_start_matches("quickjs-ng ").to_string(),
            Some(("checksum", v)) => checksum = v.to_string(),
            Some(("call_ms", v)) => times.push(v.parse().expect("a call's ms")),
            _ => {}
        }
    }
    (engine, checksum, times)
}
