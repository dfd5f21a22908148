//! The apps under test, written for each system from one handler file (`export default {
//! fetch }` runs unchanged on edge, `deno serve` and workerd), and a way to start all three.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{peers, process, process::Server, wrk};

/// The compatibility date every workerd worker is configured with.
const WORKERD_COMPATIBILITY_DATE: &str = "2024-09-23";

/// The app name wrk's `Host: bench.localhost` reaches on edge.
pub const APP: &str = "bench";

/// Writes an edge app `name` into `apps/name`: `index.js` holding `source`, and an `edge.toml`
/// with `extra_toml` appended (limits, bindings).
pub fn edge_app(apps: &Path, name: &str, source: &str, extra_toml: &str) {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).expect("create an edge app folder");
    std::fs::write(dir.join("index.js"), source).expect("write an edge app's index.js");
    let toml = format!("name = \"{name}\"\nmain = \"index.js\"\n{extra_toml}");
    std::fs::write(dir.join("edge.toml"), toml).expect("write an edge app's edge.toml");
}

/// The folder all edge nodes of one suite run share for their startup-snapshot cache, beside
/// the scenario folders.
pub fn edge_cache(scenario_dir: &Path) -> PathBuf {
    scenario_dir
        .parent()
        .expect("a scenario folder inside the suite's scratch folder")
        .join("edge-cache")
}

/// A worker in a workerd config.
pub struct Worker {
    /// The service name.
    pub name: String,
    /// Its ES module, a file name relative to the config's folder.
    pub module: String,
    /// Services bound into its `env` under their own names.
    pub bindings: Vec<String>,
}

/// Writes `dir/config.capnp` with one service per worker and an `http` socket served by the
/// first one; returns the config's path.
pub fn workerd_config(dir: &Path, workers: &[Worker]) -> PathBuf {
    let mut services = String::new();
    for w in workers {
        let bindings: Vec<String> = w
            .bindings
            .iter()
            .map(|b| format!("(name = \"{b}\", service = \"{b}\")"))
            .collect();
        let _ = writeln!(
            services,
            "    (name = \"{}\", worker = (modules = [(name = \"worker\", esModule = embed \"{}\")], \
             compatibilityDate = \"{WORKERD_COMPATIBILITY_DATE}\", bindings = [{}])),",
            w.name,
            w.module,
            bindings.join(", ")
        );
    }
    let config = format!(
        "using Workerd = import \"/workerd/workerd.capnp\";\n\n\
         const config :Workerd.Config = (\n  services = [\n{services}  ],\n  \
         sockets = [(name = \"http\", http = (), service = \"{}\")],\n);\n",
        workers[0].name
    );
    let path = dir.join("config.capnp");
    std::fs::write(&path, config).expect("write config.capnp");
    path
}

/// Starts each edge build (one app, `edge_toml` appended to its `edge.toml`), `deno serve` and
/// workerd (one worker), each serving `source` from its own folder under `dir`, and waits until
/// each answers `GET /` with 200. Returns them in that order, named.
pub fn start_all(
    edges: &[process::Edge<'_>],
    dir: &Path,
    source: &str,
    edge_toml: &str,
) -> Vec<(&'static str, Server)> {
    let apps = dir.join("edge-apps");
    edge_app(&apps, APP, source, edge_toml);
    let mut servers: Vec<(&'static str, Server)> = edges
        .iter()
        .map(|edge| {
            let data = dir.join(format!("{}-data", edge.name));
            (
                edge.name,
                process::edge(*edge, &apps, &data, &edge_cache(dir)),
            )
        })
        .collect();

    let deno_dir = dir.join("deno");
    std::fs::create_dir_all(&deno_dir).expect("create the deno folder");
    std::fs::write(deno_dir.join("main.js"), source).expect("write deno's main.js");
    let deno_cache = deno_dir.join("cache");
    let env = deno_env(&deno_cache);
    let deno = process::deno(&peers::deno(), &deno_dir.join("main.js"), &[], &env);

    let workerd_dir = dir.join("workerd");
    std::fs::create_dir_all(&workerd_dir).expect("create the workerd folder");
    std::fs::write(workerd_dir.join("worker.js"), source).expect("write workerd's worker.js");
    let worker = Worker {
        name: "main".into(),
        module: "worker.js".into(),
        bindings: vec![],
    };
    let config = workerd_config(&workerd_dir, &[worker]);
    let workerd = process::workerd(&peers::workerd(), &config);

    servers.push(("deno", deno));
    servers.push(("workerd", workerd));
    for (_, server) in &mut servers {
        server.wait_up(wrk::HOST);
    }
    servers
}

/// `DENO_DIR` for `deno` processes started in `dir`.
pub fn deno_env(dir: &Path) -> [(&'static str, &OsStr); 1] {
    [("DENO_DIR", dir.as_os_str())]
}

/// The one-app setup of the storage scenarios (`kv`, `queues`), all on files in `dir`: an
/// edge node per engine serving `source/edge.js` with `extra_toml`, and `deno serve
/// --unstable-kv` on `source/deno.ts` with its KV database in `dir`. Returns them named.
pub fn edge_nodes_and_deno_kv(
    settings: &crate::settings::Settings,
    dir: &Path,
    source: &Path,
    extra_toml: &str,
) -> (
    Vec<(&'static str, crate::process::Server)>,
    crate::process::Server,
) {
    let apps_dir = dir.join("edge-apps");
    let edge_source = std::fs::read_to_string(source.join("edge.js"))
        .unwrap_or_else(|e| panic!("read {}/edge.js: {e}", source.display()));
    edge_app(&apps_dir, APP, &edge_source, extra_toml);
    let edges = settings
        .edges
        .iter()
        .map(|edge| {
            let data = dir.join(format!("{}-data", edge.name));
            let server = crate::process::edge(*edge, &apps_dir, &data, &edge_cache(dir));
            (edge.name, server)
        })
        .collect();
    let deno_main = dir.join("deno.ts");
    std::fs::copy(source.join("deno.ts"), &deno_main)
        .unwrap_or_else(|e| panic!("copy {}/deno.ts: {e}", source.display()));
    let kv_path = dir.join("deno-kv.sqlite3");
    let deno_cache = dir.join("deno-cache");
    let env = [
        ("KV_PATH", kv_path.as_os_str()),
        ("DENO_DIR", deno_cache.as_os_str()),
    ];
    let flags = [
        "--unstable-kv",
        "--allow-env",
        "--allow-read",
        "--allow-write",
    ];
    let deno = crate::process::deno(&crate::peers::deno(), &deno_main, &flags, &env);
    (edges, deno)
}
