//! The targets, checked against a report's numbers for edge's default build (V8): hello world
//! at least 1.2× deno's and 5× workerd's req/s with a p99 no worse than deno's, a new app's
//! first request on a running node in at most 2 ms (p50) and at most 10 ms (p99) when new apps
//! arrive back to back, 1000 apps in at most 4 GiB, and CPU-bound work within 1.1× deno's time
//! (the same engine). For edge on QuickJS, CPU-bound work at most 1.2× plain QuickJS-NG's.
//! Queues: at least 20,000 durable messages/s end to end and 2× Deno KV's queue, and a
//! send→handler p50 of at most 5 ms. Wasm: a fresh instance per request in at most 50 µs
//! (p50), hello world at least `wasmtime serve`'s req/s, 1000 wasm apps in at most 1 GiB.
//! Reload: a saved change serving within 50 ms (p50).
//!
//! Each hello-vs-deno target also carries a `ceiling` line: what the target comes to in req/s,
//! what `bare-hyper` (a server doing no work) reached in the same run, and wrk's own CPU per
//! request with the rate one full core of it can drive; so a target above what any server
//! reaches under this load is visible in the report itself. The verdict does not change.

use serde_json::{Value, json};

/// The apps the density target is stated for.
const DENSITY_TARGET_APPS: f64 = 1000.0;

/// Checks every target whose figures `report` has; each result is `{name, target, value, met,
/// how}`, and for the hello-vs-deno ones `ceiling` when the run measured `bare-hyper`.
pub fn check(report: &Value) -> Vec<Value> {
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let find = |scenario: &str, variant: Option<&str>, system: &str, metric: &str| {
        results
            .iter()
            .find(|r| {
                r["scenario"] == scenario
                    && variant.is_none_or(|v| r["variant"] == v)
                    && r["system"] == system
                    && r["metric"] == metric
            })
            .and_then(|r| r["median"].as_f64())
    };
    let mut out = Vec::new();
    for conns in ["c32", "c256"] {
        let rate = |system| find("hello", Some(conns), system, "req_per_s");
        let p99 = |system| find("hello", Some(conns), system, "p99_ms");
        for (peer, factor) in [("deno", 1.2), ("workerd", 5.0)] {
            if let (Some(edge), Some(theirs)) = (rate("edge"), rate(peer)) {
                let mut target = json!({
                    "name": format!("hello {conns} vs {peer}"),
                    "target": format!("hello world: ≥ {factor}× {peer}'s req/s"),
                    "value": format!("{:.2}× ({edge:.0} vs {theirs:.0} req/s)", edge / theirs),
                    "met": edge / theirs >= factor,
                    "how": "median req/s of the interleaved rounds",
                });
                let wrk_cpu = |system| find("hello", Some(conns), system, "wrk_cpu_us_per_req");
                if peer == "deno"
                    && let Some(bare) = rate(crate::bare::SYSTEM)
                {
                    target["ceiling"] = ceiling(
                        (factor, theirs),
                        bare,
                        wrk_cpu(crate::bare::SYSTEM),
                        wrk_cpu("edge"),
                    )
                    .into();
                }
                out.push(target);
            }
        }
        if let (Some(edge), Some(deno)) = (p99("edge"), p99("deno")) {
            out.push(json!({
                "name": format!("hello {conns} p99"),
                "target": "hello world: p99 ≤ deno's",
                "value": format!("{edge:.2} ms vs {deno:.2} ms"),
                "met": edge <= deno,
                "how": "median p99 of the interleaved rounds",
            }));
        }
    }
    if let Some(ms) = find("reload", Some("save_to_serving"), "edge", "p50_ms") {
        out.push(json!({
            "name": "reload",
            "target": "save → new version serving: p50 ≤ 50 ms",
            "value": format!("{ms:.2} ms"),
            "met": ms <= 50.0,
            "how": "p50 over the saves, from the write to the first response with the new version",
        }));
    }
    // The cold-start targets: (variant, metric, bound in ms, name, target, how).
    for (variant, metric, bound, name, target, how) in [
        (
            "new_app",
            "p50_ms",
            2.0,
            "cold start",
            "a new app's first request on a running edge node: p50 ≤ 2 ms",
            "p50 over the first requests of the fresh apps, paced",
        ),
        (
            "new_app_burst",
            "p99_ms",
            10.0,
            "cold start burst",
            "new apps' first requests back to back: p99 ≤ 10 ms",
            "p99 over the first requests of the fresh apps, back to back",
        ),
    ] {
        if let Some(ms) = find("cold_start", Some(variant), "edge", metric) {
            out.push(json!({
                "name": name,
                "target": target,
                "value": format!("{ms:.2} ms"),
                "met": ms <= bound,
                "how": how,
            }));
        }
    }
    let apps = report["settings"]["density_apps"].as_f64().unwrap_or(0.0);
    if let (Some(total), Some(per_app), Some(base)) = (
        find("density", None, "edge", "rss_total_mib"),
        find("density", None, "edge", "rss_per_app_mib"),
        find("density", None, "edge", "rss_baseline_mib"),
    ) {
        let (mib, how) = if apps == DENSITY_TARGET_APPS {
            (total, "measured with 1000 apps".to_string())
        } else {
            (
                base + per_app * DENSITY_TARGET_APPS,
                format!(
                    "extrapolated from {apps} apps: RSS with no app served + 1000 × MiB per app"
                ),
            )
        };
        out.push(json!({
            "name": "density",
            "target": "1000 apps on one edge node: RSS ≤ 4 GiB",
            "value": format!("{:.2} GiB", mib / 1024.0),
            "met": mib <= 4096.0,
            "how": how,
        }));
    }
    // The CPU workload: edge on V8 against deno (same engine), edge on QuickJS against plain
    // QuickJS-NG: (name, edge system, peer, allowed ratio, target, decimals, how).
    let cpu = [
        (
            "cpu",
            "edge",
            "deno",
            1.1,
            "CPU-bound handler on edge ≤ 1.1× deno's time (both V8)",
            2,
            "median request latency at one connection",
        ),
        (
            "cpu on QuickJS",
            "edge-quickjs",
            "quickjs",
            1.2,
            "CPU-bound handler on edge on QuickJS ≤ 1.2× plain QuickJS-NG's time",
            1,
            "median request latency at one connection vs median workload() call",
        ),
    ];
    for (name, system, peer, factor, target, decimals, how) in cpu {
        if let (Some(edge), Some(other)) = (
            find("cpu", None, system, "latency_ms"),
            find("cpu", None, peer, "latency_ms"),
        ) {
            let ratio = edge / other;
            out.push(json!({
                "name": name,
                "target": target,
                "value": format!("{ratio:.2}× ({edge:.decimals$} ms vs {other:.decimals$} ms)"),
                "met": ratio <= factor,
                "how": how,
            }));
        }
    }
    // Queues: end-to-end durable messages/s (absolute and against Deno KV's queue), and the
    // send→handler latency.
    if let Some(edge) = find("queues", Some("throughput"), "edge", "msgs_per_s") {
        out.push(json!({
            "name": "queues throughput",
            "target": "durable messages end to end: ≥ 20000 msg/s",
            "value": format!("{edge:.0} msg/s"),
            "met": edge >= 20000.0,
            "how": "median of the rounds: sent ÷ time until all received",
        }));
        if let Some(deno) = find("queues", Some("throughput"), "deno", "msgs_per_s") {
            out.push(json!({
                "name": "queues vs deno",
                "target": "durable messages end to end: ≥ 2× Deno KV's queue",
                "value": format!("{:.2}× ({edge:.0} vs {deno:.0} msg/s)", edge / deno),
                "met": edge / deno >= 2.0,
                "how": "median of the rounds: sent ÷ time until all received",
            }));
        }
    }
    if let Some(p50) = find("queues", Some("latency"), "edge", "p50_ms") {
        out.push(json!({
            "name": "queues latency",
            "target": "send → handler with max_batch_timeout = 0: p50 ≤ 5 ms",
            "value": format!("{p50:.1} ms"),
            "met": p50 <= 5.0,
            "how": "200 single sends 10 ms apart",
        }));
    }
    // Wasm: instantiation, hello against wasmtime serve, density.
    if let Some(p50) = find("wasm", Some("instantiate"), "edge", "instantiate_p50_us") {
        out.push(json!({
            "name": "wasm instantiate",
            "target": "a fresh wasm instance per request: p50 ≤ 50 µs",
            "value": format!("{p50:.1} µs"),
            "met": p50 <= 50.0,
            "how": "store + instantiation from the pooling allocator, in process, median of the rounds' p50",
        }));
    }
    if let (Some(edge), Some(wasmtime)) = (
        find("wasm", Some("hello_c32"), "edge", "req_per_s"),
        find("wasm", Some("hello_c32"), "wasmtime", "req_per_s"),
    ) {
        out.push(json!({
            "name": "wasm hello vs wasmtime",
            "target": "wasm hello world: ≥ 1.0× wasmtime serve's req/s",
            "value": format!("{:.2}× ({edge:.0} vs {wasmtime:.0} req/s)", edge / wasmtime),
            "met": edge / wasmtime >= 1.0,
            "how": "median req/s of the interleaved rounds, wrk -t1 -c32",
        }));
    }
    if let (Some(total), Some(per_app), Some(base)) = (
        find("wasm", None, "edge", "rss_total_mib"),
        find("wasm", None, "edge", "rss_per_app_mib"),
        find("wasm", None, "edge", "rss_baseline_mib"),
    ) {
        let (mib, how) = if apps == DENSITY_TARGET_APPS {
            (total, "measured with 1000 distinct wasm apps".to_string())
        } else {
            (
                base + per_app * DENSITY_TARGET_APPS,
                format!(
                    "extrapolated from {apps} distinct wasm apps: RSS with no app served + 1000 × MiB per app"
                ),
            )
        };
        out.push(json!({
            "name": "wasm density",
            "target": "1000 wasm apps on one edge node: RSS ≤ 1 GiB",
            "value": format!("{:.2} GiB", mib / 1024.0),
            "met": mib <= 1024.0,
            "how": how,
        }));
    }
    out
}

/// The explanatory line under a hello-vs-deno target: what `factor` × deno's rate comes to in
/// req/s, what the server doing no work reached (`bare`), wrk's CPU per request against it and
/// against edge (µs) with the rate one full core of wrk drives at that cost, and whether the
/// target lies above the ceiling.
fn ceiling(
    (factor, deno): (f64, f64),
    bare: f64,
    wrk_bare_us: Option<f64>,
    wrk_edge_us: Option<f64>,
) -> String {
    use crate::table::number;
    let wanted = factor * deno;
    let mut line = format!(
        "{factor}× deno is {} req/s; bare hyper (no work) reached {} req/s in the same rounds",
        number(wanted),
        number(bare)
    );
    if let Some(us) = wrk_bare_us.filter(|us| *us > 0.0) {
        line.push_str(&format!(
            "; wrk used {us:.2} µs of CPU per request against it{}, so one full core of wrk \
             drives at most {} req/s",
            wrk_edge_us
                .map(|e| format!(" ({e:.2} µs against edge)"))
                .unwrap_or_default(),
            number(1e6 / us)
        ));
    }
    line.push_str(if wanted > bare {
        ": the target is ABOVE the ceiling (what a server doing no work reached)"
    } else {
        ": the target is below the ceiling (what a server doing no work reached)"
    });
    line
}

/// A target's `ceiling` line, if it has one.
pub fn ceiling_line(target: &Value) -> Option<&str> {
    target["ceiling"].as_str()
}

/// One target's result as a sentence.
pub fn sentence(target: &Value) -> String {
    format!(
        "{}: {} ({}): {}",
        target["name"].as_str().unwrap_or(""),
        target["value"].as_str().unwrap_or(""),
        target["how"].as_str().unwrap_or(""),
        if target["met"].as_bool() == Some(true) {
            format!("met (target: {})", target["target"].as_str().unwrap_or(""))
        } else {
            format!(
                "NOT met (target: {})",
                target["target"].as_str().unwrap_or("")
            )
        }
    )
}
