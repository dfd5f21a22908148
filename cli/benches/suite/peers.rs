//! The peers edge is measured against, and the tools the suite drives: Deno and workerd from
//! the npm registry (pinned, installed once into the peers cache), the plain QuickJS-NG helper
//! (`qjs/`, built with cargo), and checks that `wrk` and `npm` are there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Deno release benchmarked against (npm package `deno`).
pub const DENO_VERSION: &str = "2.9.6";

/// The workerd release benchmarked against (npm package `workerd`).
pub const WORKERD_VERSION: &str = "1.20261117.1";

/// The wasmtime CLI benchmarked against: the wasmtime edge embeds (crate `wasmtime-cli`).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Where peers are installed: `$EDGE_BENCH_PEERS`, else `target/bench-peers`.
fn cache_dir() -> PathBuf {
    std::env::var_os("EDGE_BENCH_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::target_dir().join("bench-peers"))
}

/// Fails with a clear message unless `wrk` and `npm` can be run.
pub fn check_tools() {
    for (tool, args) in [("wrk", ["-v"]), ("npm", ["--version"])] {
        let found = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{tool}` is not installed: run `bash .ci/prereqs --bench` (or `apt-get install {tool}`)"
        );
    }
}

/// The `deno` binary, installed from npm on first use.
pub fn deno() -> PathBuf {
    let dir = cache_dir().join(format!("deno-{DENO_VERSION}"));
    npm_install(
        &dir,
        &format!("deno@{DENO_VERSION}"),
        "node_modules/deno/deno",
    )
}

/// The `workerd` binary (the platform package's, not the Node launcher in `.bin/`), installed
/// from npm on first use.
pub fn workerd() -> PathBuf {
    let dir = cache_dir().join(format!("workerd-{WORKERD_VERSION}"));
    npm_install(
        &dir,
        &format!("workerd@{WORKERD_VERSION}"),
        "node_modules/@cloudflare/workerd-linux-64/bin/workerd",
    )
}

/// Installs `spec` with npm into `dir` unless `dir/binary` exists; returns that path.
fn npm_install(dir: &Path, spec: &str, binary: &str) -> PathBuf {
    let bin = dir.join(binary);
    if !bin.exists() {
        std::fs::create_dir_all(dir).expect("create the peers cache");
        println!("installing {spec} from npm into {}", dir.display());
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg(spec)
            .status()
            .expect("run npm: run `bash .ci/prereqs --bench` (or `apt-get install npm`)");
        assert!(status.success(), "npm install {spec} failed");
        assert!(
            bin.exists(),
            "npm installed {spec} but {} is missing",
            bin.display()
        );
    }
    bin
}

/// `edge` built on the quickjs engine (`--no-default-features --features quickjs`, release),
/// with cargo into `target/bench-edge-quickjs` so that it never replaces the V8 build.
pub fn edge_quickjs() -> PathBuf {
    let target = crate::target_dir().join("bench-edge-quickjs");
    println!(
        "building edge on the quickjs engine into {}",
        target.display()
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "edge-cli",
            "--no-default-features",
        ])
        .args(["--features", "quickjs", "--manifest-path"])
        .arg(crate::workspace_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo to build edge on quickjs");
    assert!(
        status.success(),
        "building edge on the quickjs engine failed"
    );
    target.join("release/edge")
}

/// The `wasmtime` CLI, installed with `cargo install wasmtime-cli` (from the Rust package
/// registry, release build: a while the first time) into the peers cache on first use.
pub fn wasmtime() -> PathBuf {
    let root = cache_dir().join(format!("wasmtime-{WASMTIME_VERSION}"));
    let bin = root.join("bin/wasmtime");
    if !bin.exists() {
        println!(
            "installing wasmtime-cli {WASMTIME_VERSION} with cargo into {}",
            root.display()
        );
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "install",
                "--quiet",
                "--locked",
                "wasmtime-cli",
                "--version",
            ])
            .arg(WASMTIME_VERSION)
            .arg("--root")
            .arg(&root)
            .status()
            .expect("run cargo install wasmtime-cli");
        assert!(status.success(), "cargo install wasmtime-cli failed");
    }
    bin
}

/// `examples/hello-rust` built for `wasm32-wasip2` (release); the component's path.
pub fn hello_rust() -> PathBuf {
    let manifest = crate::workspace_dir().join("examples/hello-rust/Cargo.toml");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run cargo to build examples/hello-rust");
    assert!(
        status.success(),
        "building examples/hello-rust failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    crate::wasm::component_path()
}

/// The plain QuickJS-NG helper (`qjs/`), built with cargo into `target/bench-qjs`.
pub fn qjs() -> PathBuf {
    let target = crate::target_dir().join("bench-qjs");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(crate::suite_dir().join("qjs/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo to build the QuickJS-NG helper");
    assert!(status.success(), "building cli/benches/suite/qjs failed");
    target.join("release/edge-bench-qjs")
}

/// The rquickjs version the helper is locked to (from `qjs/Cargo.lock`).
pub fn rquickjs_version() -> String {
    let lock = std::fs::read_to_string(crate::suite_dir().join("qjs/Cargo.lock"))
        .expect("read cli/benches/suite/qjs/Cargo.lock");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"rquickjs\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return version.trim_matches('"').to_string();
        }
    }
    panic!("no rquickjs in cli/benches/suite/qjs/Cargo.lock")
}

/// The version `bin --version` prints: the second word of its first line (`deno 2.9.6 (…)`,
/// `workerd 2026-11-17`).
pub fn version(bin: &Path) -> String {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    first.split_whitespace().nth(1).unwrap_or(first).to_string()
}
