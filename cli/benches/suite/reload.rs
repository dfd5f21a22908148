//! `reload`: save → new version serving. A running server's handler file is rewritten in
//! place with a new greeting, and the time from the write to the first response carrying it
//! is taken, polling every millisecond (each poll a fresh connection). edge: `edge serve`
//! watching its apps directory (the same path as `edge dev`); peers: `deno serve --watch` and
//! `workerd serve --watch`, which restart their process on a change. Saves are interleaved
//! (edge, deno, workerd, edge, …), each after the previous one was served.
//!
//! The target is ≤ 50 ms p50 for edge (wrangler dev takes about a second).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apps::{self, Worker};
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{http, peers, process, stats, wrk};

/// The handler, saying `greeting`.
fn source(greeting: &str) -> String {
    format!("export default {{ fetch() {{ return new Response({greeting:?}) }} }}\n")
}

/// A server being measured: where its handler file is and which port answers.
struct Target {
    system: &'static str,
    file: PathBuf,
    port: u16,
    /// What keeps it running (dropped at the end).
    _process: Running,
}

#[allow(dead_code, reason = "held for their drop, which stops the server")]
enum Running {
    Server(process::Server),
    Child(KillOnDrop),
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port the OS says is free now (for the peers that restart and must come back on it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("address").port()
}

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let mut targets = Vec::new();
    for edge in &settings.edges {
        let apps_dir = dir.join(format!("{}-apps", edge.name));
        apps::edge_app(&apps_dir, apps::APP, &source("v0"), "");
        let data = dir.join(format!("{}-data", edge.name));
        let server = process::edge(*edge, &apps_dir, &data, &apps::edge_cache(dir));
        targets.push(Target {
            system: edge.name,
            file: apps_dir.join(apps::APP).join("index.js"),
            port: server.port,
            _process: Running::Server(server),
        });
    }
    targets.push(deno(dir));
    targets.push(workerd(dir));
    for t in &targets {
        let body = http::get_when_up(t.port, wrk::HOST, Duration::from_secs(60)).body;
        assert_eq!(body, "v0", "{}: not serving the first version", t.system);
    }
    let mut times = vec![Vec::new(); targets.len()];
    for save in 1..=settings.reload_saves {
        for (i, t) in targets.iter().enumerate() {
            times[i].push(time_save(t, save));
        }
    }
    for (t, times) in targets.iter().zip(times) {
        let p99 = stats::percentile(&times, 99.0);
        println!(
            "  {:<8} save → serving p50 {:>8.2} ms  p99 {:>8.2} ms  ({} saves)",
            t.system,
            stats::median(&times),
            p99,
            times.len()
        );
        let sample = |metric, runs| Sample {
            scenario: "reload",
            variant: "save_to_serving".to_string(),
            system: t.system,
            metric,
            unit: "ms",
            runs,
        };
        report.add(sample("p50_ms", times));
        report.add(sample("p99_ms", vec![p99]));
    }
    report.note(
        "reload",
        "save_to_serving = from rewriting the handler file in place to the first response with \
         the new version (a fresh connection polled every ms); edge: `edge serve` watching its \
         apps; deno: `deno serve --watch`; workerd: `workerd serve --watch`",
    );
}

/// Saves version `save` of `t`'s handler and returns the ms until it is served.
fn time_save(t: &Target, save: usize) -> f64 {
    let greeting = format!("v{save}");
    std::fs::write(&t.file, source(&greeting)).expect("write the handler");
    let start = Instant::now();
    loop {
        if let Ok(res) = http::request(t.port, wrk::HOST, "GET", "/", b"")
            && res.body == greeting
        {
            return start.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}: save {save} not served within a minute",
            t.system
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `deno serve --watch` on a port of its own (it comes back on it after each restart).
fn deno(dir: &Path) -> Target {
    let folder = dir.join("deno");
    std::fs::create_dir_all(&folder).expect("create the deno folder");
    let file = folder.join("main.js");
    std::fs::write(&file, source("v0")).expect("write deno's main.js");
    let port = free_port();
    let cache = folder.join("cache");
    let child = Command::new(peers::deno())
        .args(["serve", "--watch", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg(&file)
        .env("DENO_NO_UPDATE_CHECK", "1")
        .envs(apps::deno_env(&cache))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start deno serve --watch");
    Target {
        system: "deno",
        file,
        port,
        _process: Running::Child(KillOnDrop(child)),
    }
}

/// `workerd serve --watch`, its socket passed in (kept across its restarts).
fn workerd(dir: &Path) -> Target {
    let folder = dir.join("workerd");
    std::fs::create_dir_all(&folder).expect("create the workerd folder");
    let file = folder.join("worker.js");
    std::fs::write(&file, source("v0")).expect("write worker.js");
    let config = apps::workerd_config(
        &folder,
        &[Worker {
            name: "main".into(),
            module: "worker.js".into(),
            bindings: vec![],
        }],
    );
    let server = process::workerd_with(&peers::workerd(), &config, &["--watch"]);
    Target {
        system: "workerd",
        file,
        port: server.port,
        _process: Running::Server(server),
    }
}
