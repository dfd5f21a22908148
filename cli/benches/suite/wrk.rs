//! Load from `wrk`, a separate process with the same settings for every system, and the
//! interleaving of runs across systems round by round. Each run also measures wrk's own CPU
//! time per request: with one wrk thread, a rate above one core's worth of it cannot be driven.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::Server;
use crate::report::{Report, Sample};

/// The `Host` every wrk request carries: edge routes by it, deno and workerd ignore it.
pub const HOST: &str = "bench.localhost";

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// wrk's own CPU time (user + system) per completed request (`N requests in …`), µs.
    pub wrk_cpu_us_per_req: f64,
}

/// One wrk load: connections, length and an optional Lua script (for a body or varying paths).
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// Open connections (`-c`); one thread (`-t1`) drives them all.
    pub connections: u32,
    /// Length of the run in seconds (`-d`).
    pub seconds: u32,
    /// A Lua script (`-s`), if any.
    pub script: Option<&'a Path>,
}

impl Load<'_> {
    /// Runs wrk against `server` once. Panics, with wrk's output and the end of the server's
    /// log, if any response was not 2xx or nothing was answered.
    pub fn run(&self, server: &Server) -> Run {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_port(server.port)))
        {
            Ok(run) => run,
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{why}\nthe server's log ends with:\n{}", server.log());
            }
        }
    }

    /// Runs wrk against `127.0.0.1:port` once; panics with wrk's output on a failure.
    fn run_port(&self, port: u16) -> Run {
        let mut command = Command::new("wrk");
        command
            .args(["-t1", "--latency", "--timeout", "30s"])
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .args(["-H", &format!("Host: {HOST}")]);
        if let Some(script) = self.script {
            command.arg("-s").arg(script);
        }
        command.arg(format!("http://127.0.0.1:{port}/"));
        // wrk is the only child reaped between these two readings: the servers are reaped
        // when dropped, and other helpers run between runs, not during one.
        let cpu_before = children_cpu();
        let out = command
            .output()
            .expect("run wrk: run `bash .ci/prereqs --bench` (or `apt-get install wrk`)");
        let wrk_cpu = children_cpu().saturating_sub(cpu_before);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "wrk failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("Non-2xx"),
            "some responses were not 2xx:\n{text}"
        );
        if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
            println!("  warning: wrk reports {}", line.trim());
        }
        let field = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no `{prefix}` in wrk's output:\n{text}"))
        };
        let requests = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .and_then(|(n, _)| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no `N requests in` in wrk's output:\n{text}"));
        let run = Run {
            rps: field("Requests/sec:").parse().unwrap_or(0.0),
            p50_ms: duration_ms(&field("50%")),
            p99_ms: duration_ms(&field("99%")),
            wrk_cpu_us_per_req: wrk_cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
        };
        assert!(run.rps > 0.0, "no request was answered:\n{text}");
        run
    }
}

/// Runs `load` against each server in turn, `rounds` times (a, b, c, a, b, c, …); returns
/// each server's runs in the order given.
fn interleaved(servers: &[(&str, &Server)], load: Load<'_>, rounds: usize) -> Vec<Vec<Run>> {
    let mut runs = vec![Vec::new(); servers.len()];
    for round in 1..=rounds {
        for (i, (name, server)) in servers.iter().enumerate() {
            let run = load.run(server);
            println!(
                "  round {round}/{rounds} {name:<12} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
                 wrk {:>5.2} µs CPU/req",
                run.rps, run.p50_ms, run.p99_ms, run.wrk_cpu_us_per_req
            );
            runs[i].push(run);
        }
    }
    runs
}

/// Runs `load` interleaved over `servers` and records each system's runs as `variant` of
/// `scenario` (see [`record`] for `rate`).
pub fn measure(
    report: &mut Report,
    (scenario, variant): (&'static str, &str),
    servers: &[(&'static str, &Server)],
    load: Load<'_>,
    rounds: usize,
    rate: (&'static str, &'static str, f64),
) {
    let runs = interleaved(servers, load, rounds);
    for ((system, _), runs) in servers.iter().zip(runs) {
        record(report, scenario, variant, system, &runs, rate);
    }
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`, `1.00m`) in milliseconds.
fn duration_ms(s: &str) -> f64 {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

/// Records one system's runs of a variant: throughput as `rate_metric` (requests/s times
/// `per_request`, e.g. 10 for ten KV reads per request), the p50 and p99 latencies, and wrk's
/// CPU per request against it (`wrk_cpu_us_per_req`, kept out of the tables: see
/// `table::LOAD_METRICS`).
fn record(
    report: &mut Report,
    scenario: &'static str,
    variant: &str,
    system: &'static str,
    runs: &[Run],
    (rate_metric, rate_unit, per_request): (&'static str, &'static str, f64),
) {
    let sample = |metric, unit, f: &dyn Fn(&Run) -> f64| Sample {
        scenario,
        variant: variant.to_string(),
        system,
        metric,
        unit,
        runs: runs.iter().map(f).collect(),
    };
    report.add(sample(rate_metric, rate_unit, &|r| r.rps * per_request));
    report.add(sample("p50_ms", "ms", &|r| r.p50_ms));
    report.add(sample("p99_ms", "ms", &|r| r.p99_ms));
    report.add(sample("wrk_cpu_us_per_req", "µs", &|r| {
        r.wrk_cpu_us_per_req
    }));
}

/// CPU time (user + system) used so far by this process's terminated and reaped children.
#[allow(
    unsafe_code,
    reason = "getrusage has no wrapper in std; both uses are documented below"
)]
fn children_cpu() -> Duration {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_CHILDREN is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(
        rc,
        0,
        "getrusage(RUSAGE_CHILDREN): {}",
        std::io::Error::last_os_error()
    );
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
