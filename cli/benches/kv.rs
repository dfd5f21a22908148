//! KV throughput through a JavaScript handler: edge (redb, durable group commit) side by side
//! with Deno KV's local backend (`deno serve --unstable-kv`, SQLite) running the same logic
//! (`benches/kv/edge.js`, `benches/kv/deno.ts`), in one run, interleaved round by round.
//!
//! Run: `cargo bench -p edge-cli --bench kv` (`-- --quick` for a short run). Needs `wrk` and
//! `npm` (Debian packages `wrk`, `npm`); Deno is installed from the npm registry (pinned) into
//! `target/bench-peers` (or `$EDGE_BENCH_PEERS`) on first use.
//!
//! Scenarios, each `wrk -t1 -c32` against one app (one isolate on each side):
//! - `get`: one `get` of a random existing key per request;
//! - `get10`: ten `get`s per request (`Promise.all`), reported as gets/s;
//! - `put`: one `put` of a fresh key per request; a 2xx means the write is durable.
//!
//! Targets (issue #4): ≥ 50k get/s, ≥ 10k put/s, ≥ 1.5× Deno.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The Deno release benchmarked against, from the npm registry.
const DENO_VERSION: &str = "2.9.6";

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kv")
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// `deno` from the npm registry, installed once into the peers cache.
fn deno() -> PathBuf {
    let root = std::env::var_os("EDGE_BENCH_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench-peers"));
    let dir = root.join(format!("deno-{DENO_VERSION}"));
    let bin = dir.join("node_modules/.bin/deno");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        println!(
            "installing deno {DENO_VERSION} from npm into {}",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("deno@{DENO_VERSION}"))
            .status()
            .expect("run npm (apt-get install npm)");
        assert!(status.success(), "npm install deno failed");
    }
    bin
}

/// Waits for a line containing an address and returns its port.
fn port_from(child: &mut Child, marker: &str) -> u16 {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker)
                && let Some(port) = line
                    .trim_end_matches('/')
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("server did not print its address")
}

fn start_edge(root: &Path) -> Server {
    let apps = root.join("edge-apps");
    let app = apps.join("kvbench");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(bench_dir().join("edge.js"), app.join("index.js")).unwrap();
    std::fs::write(
        app.join("edge.toml"),
        "name = \"kvbench\"\nmain = \"index.js\"\n\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"bench\"\n\n# Filling 10,000 keys takes one long request.\n[limits]\ncpu_ms = 30000\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(["serve", "--apps"])
        .arg(&apps)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("edge-data"))
        .env("EDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start edge");
    let port = port_from(&mut child, "listening on");
    Server { child, port }
}

fn start_deno(root: &Path) -> Server {
    let main = root.join("deno.ts");
    std::fs::copy(bench_dir().join("deno.ts"), &main).unwrap();
    let mut child = Command::new(deno())
        .args([
            "serve",
            "--unstable-kv",
            "--allow-env",
            "--allow-read",
            "--allow-write",
        ])
        .args(["--host", "127.0.0.1", "--port", "0"])
        .arg(&main)
        .env("KV_PATH", root.join("deno-kv.sqlite3"))
        .env("DENO_NO_UPDATE_CHECK", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start deno");
    // deno serve prints its address on stderr.
    let err = child.stderr.take().unwrap();
    child.stdout = None;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if line.contains("Listening on")
                && let Some(port) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .and_then(|u| u.trim_end_matches('/').rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("deno serve did not print its address");
    Server { child, port }
}

fn request(port: u16, method: &str, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: kvbench.localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn duration_ms(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(port: u16, script: &str, seconds: u32) -> Run {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", "--latency", &format!("-d{seconds}s"), "-s"])
        .arg(bench_dir().join(script))
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "{script}: some requests failed:\n{text}"
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {prefix} in wrk output:\n{text}"))
    };
    Run {
        rps: field("Requests/sec:").parse().unwrap(),
        p50_ms: duration_ms(&field("50%")),
        p99_ms: duration_ms(&field("99%")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, seconds) = if quick { (3, 4) } else { (5, 8) };
    let root = target_dir().join(format!("bench-kv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();

    let edge = start_edge(&root);
    let deno = start_deno(&root);
    for (name, s) in [("edge", &edge), ("deno", &deno)] {
        let r = request(s.port, "POST", "/fill?n=10000");
        assert!(r.contains("filled"), "{name} fill failed: {r}");
        let r = request(s.port, "GET", "/get?k=k9999");
        assert!(r.contains("value-9999"), "{name} get failed: {r}");
    }

    let scenarios = [
        ("get", "get.lua", 1.0),
        ("get10", "get10.lua", 10.0),
        ("put", "put.lua", 1.0),
    ];
    println!(
        "KV benchmark: wrk -t1 -c32, {rounds} interleaved rounds of {seconds} s, medians (edge first, then deno)"
    );
    println!(
        "{:<8} {:>12} {:>12} {:>7}   {:>16} {:>16}",
        "scenario", "edge ops/s", "deno ops/s", "ratio", "edge p50/p99 ms", "deno p50/p99 ms"
    );
    for (name, script, ops) in scenarios {
        let mut e = Vec::new();
        let mut d = Vec::new();
        for _ in 0..rounds {
            e.push(wrk(edge.port, script, seconds));
            d.push(wrk(deno.port, script, seconds));
        }
        let stat = |runs: &[Run]| {
            (
                median(runs.iter().map(|r| r.rps * ops).collect()),
                median(runs.iter().map(|r| r.p50_ms).collect()),
                median(runs.iter().map(|r| r.p99_ms).collect()),
            )
        };
        let (er, ep50, ep99) = stat(&e);
        let (dr, dp50, dp99) = stat(&d);
        println!(
            "{name:<8} {er:>12.0} {dr:>12.0} {:>6.2}x   {:>16} {:>16}",
            er / dr,
            format!("{ep50:.2}/{ep99:.2}"),
            format!("{dp50:.2}/{dp99:.2}")
        );
    }
    drop(edge);
    drop(deno);
    let _ = std::fs::remove_dir_all(&root);
}
