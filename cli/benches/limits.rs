//! What enforcing limits costs and how precisely it stops a runaway script.
//!
//! Run: `cargo bench -p edge-cli --bench limits` (add `-- --quick` for a short run).
//! Needs `wrk` (Debian package `wrk`) for the throughput part.
//!
//! 1. CPU-limit overshoot: a tenant spinning forever under `cpu_ms` = 10, 50 and 200; for each
//!    termination, the CPU the invocation had used when it was stopped (from the node's log)
//!    minus the limit. Target: at most 10% of the limit + 2 ms.
//! 2. Accounting cost: hello-world requests/s under wrk with limits enforced and with
//!    `--no-limits`, interleaved over several rounds. Target: at most 1% slower.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Node {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Node {
    fn start(apps: &Path, extra: &[&str]) -> Node {
        let data = apps.join(".data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_edge"))
            .args([
                "serve",
                "--apps",
                apps.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--data-dir", data.to_str().unwrap(), "--log-format", "json"])
            .args(extra)
            .env("EDGE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edge");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .expect("listening line");
        Node { child, port, log }
    }

    fn get(&self, host: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn app(root: &Path, name: &str, limits: &str, js: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"index.js\"\nroutes = [\"{name}.test/*\"]\n{limits}"),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), js).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn overshoot(quick: bool) {
    println!("CPU-limit overshoot (CPU used when stopped, minus the limit)");
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "cpu_ms", "runs", "median", "p99", "max", "target"
    );
    let runs = if quick { 10 } else { 40 };
    for cpu_ms in [10u64, 50, 200] {
        let root = scratch(&format!("spin{cpu_ms}"));
        app(
            &root,
            "spin",
            &format!("[limits]\ncpu_ms = {cpu_ms}\n"),
            "export default { fetch() { for (;;) {} } };\n",
        );
        let node = Node::start(&root, &[]);
        for _ in 0..runs {
            let res = node.get("spin.test");
            assert!(res.contains("cpu-limit"), "{res}");
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut over: Vec<f64> = node
            .log
            .lock()
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["limit"] == "cpu_ms")
            .filter_map(|e| e["cpu_used_ms"].as_f64())
            .map(|used| used - cpu_ms as f64)
            .collect();
        assert_eq!(over.len(), runs, "one log line per termination");
        let median = percentile(&mut over, 0.5);
        let p99 = percentile(&mut over, 0.99);
        let max = percentile(&mut over, 1.0);
        let target = cpu_ms as f64 * 0.1 + 2.0;
        println!(
            "{cpu_ms:>8} {runs:>6} {median:>8.2}ms {p99:>8.2}ms {max:>8.2}ms {target:>8.2}ms {}",
            if p99 <= target { "ok" } else { "OVER TARGET" }
        );
    }
}

fn wrk(port: u16, seconds: u32) -> f64 {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c32",
            &format!("-d{seconds}s"),
            "-H",
            "Host: hello.test",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("wrk is needed for the throughput part: apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn accounting_cost(quick: bool) {
    let root = scratch("hello");
    app(
        &root,
        "hello",
        "",
        "export default { fetch() { return new Response(\"hello\"); } };\n",
    );
    let (rounds, seconds) = if quick { (3, 3) } else { (5, 8) };
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..rounds {
        for enforce in [true, false] {
            let node = Node::start(&root, if enforce { &[] } else { &["--no-limits"] });
            for _ in 0..50 {
                node.get("hello.test");
            }
            let rps = wrk(node.port, seconds);
            if enforce {
                with.push(rps)
            } else {
                without.push(rps)
            }
        }
    }
    let a = percentile(&mut with, 0.5);
    let b = percentile(&mut without, 0.5);
    println!();
    println!(
        "Accounting cost on hello world (wrk -t1 -c32, {rounds} interleaved rounds of {seconds} s, medians)"
    );
    println!("  limits enforced: {a:>10.0} req/s");
    println!("  --no-limits:     {b:>10.0} req/s");
    println!(
        "  cost:            {:>9.2}% (target <= 1%)",
        (1.0 - a / b) * 100.0
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    overshoot(quick);
    accounting_cost(quick);
}
