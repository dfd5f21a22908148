//! `density`: memory for many apps, each served once.
//!
//! - edge: one `edge serve` with N apps (the hello handler, one file each); RSS once listening
//!   (`rss_baseline_mib`, no app served), then each app served once and RSS again
//!   (`rss_total_mib`); `rss_per_app_mib` = (total − baseline) / N.
//! - workerd: one process with N workers and an entry worker that routes by Host to them
//!   through service bindings; the same three figures, the baseline from a process with only
//!   the entry worker.
//! - deno: one process per app, so the RSS of one idle served `deno serve` is its per-app
//!   figure (median over a few processes), and its total is that × N.
//!
//! RSS is `VmRSS` from `/proc/PID/status`, read a moment after the last request.

use std::path::Path;
use std::time::Duration;

use crate::apps::{self, Worker};
use crate::process::{self, Server};
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{hello, http, peers, stats, wrk};

/// How long to let a process settle before reading its RSS.
const SETTLE: Duration = Duration::from_secs(2);

/// The entry worker: routes `appN.localhost` to the service bound as `appN`; anything else is
/// answered by the entry itself.
const ENTRY: &str = "export default {
  fetch(request, env) {
    const name = new URL(request.url).hostname.split(\".\")[0];
    const app = env[name];
    return app ? app.fetch(request) : new Response(\"entry\");
  },
};
";

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let n = settings.density_apps;
    let variant = format!("apps{n}");
    let edge_apps = dir.join("edge-apps");
    let workerd_dir = dir.join("workerd");
    let workerd_base_dir = dir.join("workerd-base");
    for d in [&workerd_dir, &workerd_base_dir] {
        std::fs::create_dir_all(d).expect("create a workerd folder");
        std::fs::write(d.join("entry.js"), ENTRY).expect("write entry.js");
    }
    let mut workers = vec![entry((0..n).map(|i| format!("app{i}")).collect())];
    for i in 0..n {
        let source = format!("{}// app {i}\n", hello::SOURCE);
        apps::edge_app(&edge_apps, &format!("app{i}"), &source, "");
        std::fs::write(workerd_dir.join(format!("app{i}.js")), &source).expect("write a worker");
        workers.push(Worker {
            name: format!("app{i}"),
            module: format!("app{i}.js"),
            bindings: vec![],
        });
    }
    let config = apps::workerd_config(&workerd_dir, &workers);
    let base_config = apps::workerd_config(&workerd_base_dir, &[entry(vec![])]);
    let workerd_bin = peers::workerd();

    let mut edges: Vec<Figures> = settings.edges.iter().map(|_| Figures::default()).collect();
    let mut workerd = Figures::default();
    let mut deno = Vec::new();
    for round in 1..=settings.density_rounds {
        for (edge, figures) in settings.edges.iter().zip(&mut edges) {
            let data = dir.join(format!("{}-data-{round}", edge.name));
            let node = process::edge(*edge, &edge_apps, &data, &apps::edge_cache(dir));
            figures.measure(edge.name, node, n);
        }

        let mut base = process::workerd(&workerd_bin, &base_config);
        base.wait_up(wrk::HOST);
        std::thread::sleep(SETTLE);
        let base_rss = base.rss_mib();
        drop(base);
        let mut full = process::workerd(&workerd_bin, &config);
        full.wait_up(wrk::HOST);
        workerd.measure_from("workerd", full, n, base_rss);

        deno.push(deno_per_app(settings, dir));
        println!(
            "  round {round}: deno {:.1} MiB per idle served process",
            deno[deno.len() - 1]
        );
    }
    for (edge, figures) in settings.edges.iter().zip(&edges) {
        figures.record(report, &variant, edge.name);
    }
    workerd.record(report, &variant, "workerd");
    let sample = |metric, runs| Sample {
        scenario: "density",
        variant: variant.clone(),
        system: "deno",
        metric,
        unit: "MiB",
        runs,
    };
    report.add(sample("rss_per_app_mib", deno.clone()));
    report.add(sample(
        "rss_total_mib",
        deno.iter().map(|d| d * n as f64).collect(),
    ));
    report.note(
        "density",
        format!(
            "deno runs one process per app: its MiB per app is one idle served process's RSS (median of {}), its total that × {n}; workerd's baseline is a process with only the entry worker",
            settings.density_deno_processes
        ),
    );
}

/// The entry worker with these services bound.
fn entry(bindings: Vec<String>) -> Worker {
    Worker {
        name: "entry".into(),
        module: "entry.js".into(),
        bindings,
    }
}

/// One system's RSS figures over the rounds.
#[derive(Default)]
struct Figures {
    baseline: Vec<f64>,
    total: Vec<f64>,
    per_app: Vec<f64>,
}

impl Figures {
    /// Reads the baseline RSS of a node nobody has asked anything yet, then serves each app.
    fn measure(&mut self, name: &str, node: Server, n: usize) {
        std::thread::sleep(SETTLE);
        let baseline = node.rss_mib();
        self.measure_from(name, node, n, baseline);
    }

    /// Serves `app0` … `app{n-1}` once each and reads the RSS against `baseline`.
    fn measure_from(&mut self, name: &str, node: Server, n: usize, baseline: f64) {
        let mut body = String::new();
        for i in 0..n {
            let response = http::request(node.port, &format!("app{i}.localhost"), "GET", "/", b"")
                .unwrap_or_else(|e| panic!("{name} app{i}: {e}\n{}", node.log()));
            assert_eq!(response.status, 200, "{name} app{i}: {response:?}");
            body = response.body;
        }
        assert_eq!(body, "Hello, world!", "{name} did not route to the apps");
        std::thread::sleep(SETTLE);
        let total = node.rss_mib();
        let per_app = (total - baseline) / n as f64;
        println!(
            "  {name:<8} baseline {baseline:>8.1} MiB  {n} apps {total:>8.1} MiB  {per_app:.2} MiB per app"
        );
        self.baseline.push(baseline);
        self.total.push(total);
        self.per_app.push(per_app);
    }

    fn record(&self, report: &mut Report, variant: &str, system: &'static str) {
        for (metric, runs) in [
            ("rss_total_mib", &self.total),
            ("rss_per_app_mib", &self.per_app),
            ("rss_baseline_mib", &self.baseline),
        ] {
            report.add(Sample {
                scenario: "density",
                variant: variant.to_string(),
                system,
                metric,
                unit: "MiB",
                runs: runs.clone(),
            });
        }
    }
}

/// The median RSS of a few idle `deno serve` processes, each having served one request.
fn deno_per_app(settings: &Settings, dir: &Path) -> f64 {
    let main = dir.join("deno-main.js");
    std::fs::write(&main, hello::SOURCE).expect("write deno's main.js");
    let cache = dir.join("deno-cache");
    let bin = peers::deno();
    let mut servers: Vec<Server> = (0..settings.density_deno_processes)
        .map(|_| process::deno(&bin, &main, &[], &apps::deno_env(&cache)))
        .collect();
    for s in &mut servers {
        s.wait_up(wrk::HOST);
    }
    std::thread::sleep(SETTLE);
    let rss: Vec<f64> = servers.iter().map(Server::rss_mib).collect();
    stats::median(&rss)
}
