//! The side-by-side benchmark suite: edge against Deno, workerd and plain QuickJS-NG, in one
//! run, interleaved round by round (edge, deno, workerd, edge, deno, workerd, …), medians and
//! the ratio edge/peer.
//!
//! Run: `cargo bench -p edge-cli --bench suite` (full, about 15–25 minutes) or
//! `cargo bench -p edge-cli --bench suite -- --quick` (about two minutes). Options:
//! `--only SCENARIO[,…]`, `--out FILE` (another copy of the JSON report), `--readme` (rewrite
//! README.md's Performance table from this run), `--readme-from FILE` (rewrite it from a saved
//! report and run nothing). Needs `wrk` and `npm` (`bash .ci/prereqs --bench` installs both);
//! Deno and workerd come from the npm registry, pinned, into `target/bench-peers` (or
//! `$EDGE_BENCH_PEERS`) on first use.
//!
//! Scenarios, one module each: `hello` (with `bare-hyper`, a server doing no work at all, as
//! its ceiling: see `bare.rs`), `json`, `cold_start`, `density`, `cpu`, `kv`, `cache`,
//! `websocket` (echo, against Deno's `upgradeWebSocket` and workerd), `queues`,
//! `wasm` (against `wasmtime serve`, installed with cargo into the peers cache), `reload` (save →
//! serving, against `deno serve --watch` and `workerd serve --watch`). The README's
//! Performance section says what each one measures.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

mod apps;
mod bare;
mod cache;
mod clock;
mod cold_start;
mod cpu;
mod density;
mod hello;
mod http;
mod json;
mod kv;
mod machine;
mod options;
mod peers;
mod process;
mod project;
mod queues;
mod readme;
mod reload;
mod report;
mod settings;
mod stats;
mod table;
mod targets;
mod wasm;
mod websocket;
mod wrk;

use std::path::{Path, PathBuf};

use options::Options;
use report::Report;
use settings::Settings;

/// A scenario's entry point: the settings, its scratch folder, the report to add to.
type Scenario = fn(&Settings, &Path, &mut Report);

/// Every scenario in the order the suite runs them, with the function that runs it.
const SCENARIOS: [(&str, Scenario); 12] = [
    ("hello", hello::run),
    ("json", json::run),
    ("cold_start", cold_start::run),
    ("density", density::run),
    ("cpu", cpu::run),
    ("kv", kv::run),
    ("cache", cache::run),
    ("websocket", websocket::run),
    ("queues", queues::run),
    ("wasm", wasm::run),
    ("reload", reload::run),
    ("project", project::run),
];

/// Scenarios the suite lists but cannot run yet, with the reason.
const NOT_RUN: [(&str, &str); 0] = [];

/// The folder this bench's files live in (`cli/benches/suite`).
fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/suite")
}

/// The workspace's `target` folder.
fn target_dir() -> PathBuf {
    workspace_dir().join("target")
}

/// The workspace's README.md.
fn readme_path() -> PathBuf {
    workspace_dir().join("README.md")
}

/// The workspace's root folder.
fn workspace_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

fn main() {
    // The `hello` scenario's ceiling reference runs as a child of the suite: this same binary.
    if std::env::args().nth(1).as_deref() == Some(bare::FLAG) {
        bare::serve();
        return;
    }
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n\n{}", options::USAGE);
            std::process::exit(2);
        }
    };
    if let Some(file) = &options.readme_from {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read the report {}: {e}", file.display()));
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        readme::rewrite(&readme_path(), &json);
        println!(
            "rewrote the Performance table in {}",
            readme_path().display()
        );
        return;
    }

    let mut settings = Settings::new(options.quick);
    peers::check_tools();
    if !options.v8_only {
        let bin: &'static std::path::Path = Box::leak(peers::edge_quickjs().into_boxed_path());
        settings.edges.push(process::Edge {
            name: "edge-quickjs",
            bin,
        });
    }
    let root = target_dir().join(format!("bench-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the suite's scratch folder");
    let root = root.canonicalize().expect("scratch folder path");

    let mut report = Report::new(&settings);
    // Deno and workerd (the wasm scenario runs against wasmtime only).
    let peers_wanted = SCENARIOS
        .iter()
        .any(|(name, _)| !matches!(*name, "wasm" | "project") && options.wants(name));
    if peers_wanted {
        report.version("deno", peers::version(&peers::deno()));
        let workerd = peers::version(&peers::workerd());
        report.version(
            "workerd",
            format!("{} (workerd {workerd})", peers::WORKERD_VERSION),
        );
        report.version("rquickjs", peers::rquickjs_version());
    }
    println!("{}", settings.describe());
    for (name, run) in SCENARIOS {
        if options.wants(name) {
            println!("\n== {name}");
            run(&settings, &root.join(name), &mut report);
            report.print_scenario(name);
        }
    }
    for (name, reason) in NOT_RUN {
        if options.wants(name) {
            println!("\n== {name}: {reason}");
            report.not_run(name, reason);
        }
    }

    let json = report.to_json();
    report.print_targets(&json);
    let text = serde_json::to_string_pretty(&json).expect("serialize the report") + "\n";
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    let mut files = vec![dir.join(format!("suite-{}.json", clock::unix_secs()))];
    files.extend(options.out.clone());
    for file in &files {
        std::fs::write(file, &text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        println!("wrote {}", file.display());
    }
    if options.readme {
        readme::rewrite(&readme_path(), &json);
        println!(
            "rewrote the Performance table in {}",
            readme_path().display()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
