//! `wasm`: a Rust handler compiled to a `wasi:http/proxy` component (`examples/hello-rust`,
//! built here with cargo for `wasm32-wasip2`) on edge and on `wasmtime serve` of the same
//! wasmtime version (48), the same `.wasm` file. Both make a fresh instance per request with
//! wasmtime's pooling allocator.
//!
//! - `hello_c32`: req/s, p50 and p99 under `wrk -t1 -c32`, interleaved rounds.
//! - `instantiate`: edge's per-request cost before the guest runs — a fresh store under the
//!   default limits and the component's instantiation from the pool — timed in process
//!   through the worker's own code (`edge_runtime::wasm::measure_instantiate`); p50 and p99 in
//!   µs per round.
//! - `density`: one `edge serve` with N wasm apps, each a copy of the component made distinct
//!   by a custom section (so no compiled code is shared between them), each served once; RSS
//!   before any request and after, as the `density` scenario does for JavaScript.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{self, Server};
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::wrk::{self, Load};
use crate::{apps, http, peers, stats};

/// How long to let a process settle before reading its RSS.
const SETTLE: Duration = Duration::from_secs(2);

/// Instantiations timed per round.
const INSTANTIATIONS: usize = 2000;

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let component = peers::hello_rust();
    let wasmtime = peers::wasmtime();
    report.version("wasmtime", peers::version(&wasmtime));
    let edge = settings.edges[0];

    // hello, side by side.
    let apps_dir = dir.join("edge-apps");
    wasm_app(&apps_dir, apps::APP, &component, b"");
    let mut node = process::edge(
        edge,
        &apps_dir,
        &dir.join("edge-data"),
        &apps::edge_cache(dir),
    );
    let mut peer = process::wasmtime_serve(&wasmtime, &component);
    node.wait_up(wrk::HOST);
    peer.wait_up(wrk::HOST);
    println!("  wrk -t1 -c32, {} s", settings.seconds);
    let load = Load {
        connections: 32,
        seconds: settings.seconds,
        script: None,
    };
    wrk::measure(
        report,
        ("wasm", "hello_c32"),
        &[(edge.name, &node), ("wasmtime", &peer)],
        load,
        settings.rounds,
        ("req_per_s", "req/s", 1.0),
    );
    drop((node, peer));

    // instantiate, in process.
    let (p50, p99) = instantiate(settings, dir, &component);
    for (metric, runs) in [("instantiate_p50_us", p50), ("instantiate_p99_us", p99)] {
        report.add(Sample {
            scenario: "wasm",
            variant: "instantiate".into(),
            system: edge.name,
            metric,
            unit: "µs",
            runs,
        });
    }

    // density.
    let n = settings.density_apps;
    let many = dir.join("edge-many");
    for i in 0..n {
        wasm_app(
            &many,
            &format!("app{i}"),
            &component,
            format!("app {i}").as_bytes(),
        );
    }
    let (mut baseline, mut total, mut per_app) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=settings.density_rounds {
        // A fresh cache each round: every component is compiled, as on a node's first start.
        let cache = dir.join(format!("density-cache-{round}"));
        let node = process::edge(
            edge,
            &many,
            &dir.join(format!("density-data-{round}")),
            &cache,
        );
        std::thread::sleep(SETTLE);
        let base = node.rss_mib();
        serve_each(&node, n);
        std::thread::sleep(SETTLE);
        let all = node.rss_mib();
        let each = (all - base) / n as f64;
        println!(
            "  {:<8} baseline {base:>8.1} MiB  {n} wasm apps {all:>8.1} MiB  {each:.2} MiB per app",
            edge.name
        );
        baseline.push(base);
        total.push(all);
        per_app.push(each);
    }
    let variant = format!("apps{n}");
    for (metric, runs) in [
        ("rss_total_mib", total),
        ("rss_per_app_mib", per_app),
        ("rss_baseline_mib", baseline),
    ] {
        report.add(Sample {
            scenario: "wasm",
            variant: variant.clone(),
            system: edge.name,
            metric,
            unit: "MiB",
            runs,
        });
    }
    report.note(
        "wasm",
        format!(
            "hello: examples/hello-rust on edge and `wasmtime serve -S cli` (fresh instance per request on both); instantiate: {INSTANTIATIONS} store + instantiation per round in process through edge's worker code; density: {n} distinct copies of the component, compiled on start, each served once"
        ),
    );
}

/// An edge app `name` under `apps` running `component` (with `marker` appended as a custom
/// section when not empty, so the copy's content, and its compilation, is its own).
fn wasm_app(apps: &Path, name: &str, component: &Path, marker: &[u8]) {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).expect("create a wasm app folder");
    let mut bytes = std::fs::read(component).expect("read the component");
    if !marker.is_empty() {
        bytes.extend_from_slice(&custom_section("edge-bench", marker));
    }
    std::fs::write(dir.join("app.wasm"), bytes).expect("write app.wasm");
    let toml = format!("name = \"{name}\"\nmain = \"app.wasm\"\n");
    std::fs::write(dir.join("edge.toml"), toml).expect("write edge.toml");
}

/// A WebAssembly custom section (id 0) named `name` holding `data`.
fn custom_section(name: &str, data: &[u8]) -> Vec<u8> {
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    let mut section = vec![0u8];
    section.extend(leb128(payload.len()));
    section.extend(payload);
    section
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Serves `app0` … `app{n-1}` once each.
fn serve_each(node: &Server, n: usize) {
    for i in 0..n {
        let response = http::request(node.port, &format!("app{i}.localhost"), "GET", "/", b"")
            .unwrap_or_else(|e| panic!("app{i}: {e}\n{}", node.log()));
        assert_eq!(response.status, 200, "app{i}: {response:?}\n{}", node.log());
        assert!(
            response.body.starts_with("Hello from wasm"),
            "app{i}: {response:?}"
        );
    }
}

/// p50 and p99 (µs) of each round's instantiations.
fn instantiate(settings: &Settings, dir: &Path, component: &Path) -> (Vec<f64>, Vec<f64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let engine = edge_runtime::wasm::WasmEngine::new(edge_runtime::wasm::WasmSettings {
        cache_dir: Some(dir.join("instantiate-cache")),
        ..Default::default()
    });
    let registry = edge_runtime::Registry::default();
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for round in 1..=settings.rounds {
        let times = rt
            .block_on(edge_runtime::wasm::measure_instantiate(
                &engine,
                &registry,
                component,
                INSTANTIATIONS,
            ))
            .unwrap_or_else(|e| panic!("instantiate {}: {e}", component.display()));
        let us: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e6).collect();
        let (a, b) = (stats::percentile(&us, 50.0), stats::percentile(&us, 99.0));
        println!(
            "  round {round}/{} instantiate p50 {a:>7.1} µs  p99 {b:>7.1} µs",
            settings.rounds
        );
        p50.push(a);
        p99.push(b);
    }
    (p50, p99)
}

/// The example component this scenario serves, built.
pub fn component_path() -> PathBuf {
    crate::workspace_dir().join("examples/hello-rust/target/wasm32-wasip2/release/hello_rust.wasm")
}
