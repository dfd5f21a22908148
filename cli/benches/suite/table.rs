//! Results as tables: one row per measured figure, edge (on V8) first, then edge on QuickJS and
//! each peer with the ratio edge/that, and last the `hello` scenario's ceiling (`bare-hyper`,
//! a server doing no work); for the console and for README.md, from the report's JSON
//! `results`.

use serde_json::{Value, json};

/// The systems in the order their columns appear: edge's default build (V8), edge on the
/// quickjs engine, the peers, the ceiling reference of `hello` (empty on other scenarios).
pub const SYSTEMS: [&str; 7] = [
    "edge",
    "edge-quickjs",
    "deno",
    "workerd",
    "quickjs",
    "wasmtime",
    crate::bare::SYSTEM,
];

/// Metrics of the load generator rather than of the system under test (wrk's own CPU per
/// request): kept in the JSON results, left out of the tables and ratios.
pub const LOAD_METRICS: [&str; 1] = ["wrk_cpu_us_per_req"];

/// How system `i` of [`SYSTEMS`] is named in column headers.
fn column_name(i: usize) -> &'static str {
    match SYSTEMS[i] {
        "quickjs" => "plain QuickJS-NG",
        "edge-quickjs" => "edge on QuickJS",
        "bare-hyper" => "bare hyper (no work)",
        other => other,
    }
}

/// Whether column `i` of [`SYSTEMS`] is a build of edge (compared like for like, variant for
/// variant).
fn is_edge(i: usize) -> bool {
    SYSTEMS[i].starts_with("edge")
}

/// One figure of one scenario variant, with each system's median.
#[derive(Debug)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// The variant.
    pub variant: String,
    /// The metric.
    pub metric: String,
    /// Each system's median, in [`SYSTEMS`] order; for a peer, the figure edge's is compared
    /// with (see [`peer_variant`]).
    pub values: [Option<f64>; SYSTEMS.len()],
}

/// The peers' variant edge's `variant` is compared with: a cold start of an app in a running
/// edge node is compared with a peer's whole process start (peers have no lazy multi-tenant
/// loading); everything else with the same variant.
pub fn peer_variant<'a>(scenario: &str, variant: &'a str) -> &'a str {
    match (scenario, variant) {
        ("cold_start", "new_app" | "new_app_burst") => "new_process",
        _ => variant,
    }
}

/// Whether a bigger value of `metric` is better (throughput) rather than worse (time, memory).
pub fn higher_is_better(metric: &str) -> bool {
    metric.ends_with("_per_s")
}

/// How a metric is named in tables.
fn label(metric: &str) -> &str {
    match metric {
        "req_per_s" => "req/s ↑",
        "ops_per_s" => "ops/s ↑",
        "p50_ms" => "p50 ms ↓",
        "p99_ms" => "p99 ms ↓",
        "latency_ms" => "ms per request ↓",
        "rss_total_mib" => "RSS MiB ↓",
        "rss_per_app_mib" => "MiB per app ↓",
        "rss_baseline_mib" => "RSS MiB, no app served ↓",
        other => other,
    }
}

fn median_of(
    results: &[Value],
    scenario: &str,
    variant: &str,
    system: &str,
    metric: &str,
) -> Option<f64> {
    results
        .iter()
        .find(|r| {
            r["scenario"] == scenario
                && r["variant"] == variant
                && r["system"] == system
                && r["metric"] == metric
        })
        .and_then(|r| r["median"].as_f64())
}

/// The rows for `results` (any number of scenarios), in the order first measured: one per
/// (scenario, variant, metric) that edge measured, plus those only peers measured.
pub fn rows(results: &[Value]) -> Vec<Row> {
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in results {
        if LOAD_METRICS.iter().any(|m| r["metric"] == *m) {
            continue;
        }
        let key = (
            r["scenario"].as_str().unwrap_or("").to_string(),
            r["variant"].as_str().unwrap_or("").to_string(),
            r["metric"].as_str().unwrap_or("").to_string(),
        );
        let edge_has = ["edge", "edge-quickjs"]
            .iter()
            .any(|edge| median_of(results, &key.0, &key.1, edge, &key.2).is_some());
        let compared = results.iter().any(|e| {
            e["system"].as_str().is_some_and(|s| s.starts_with("edge"))
                && e["scenario"] == key.0.as_str()
                && e["metric"] == key.2.as_str()
                && peer_variant(&key.0, e["variant"].as_str().unwrap_or("")) == key.1
        });
        if (edge_has || !compared) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(scenario, variant, metric)| {
            let mut values = [None; SYSTEMS.len()];
            for (i, system) in SYSTEMS.iter().enumerate() {
                let v = if is_edge(i) {
                    variant.as_str()
                } else {
                    peer_variant(&scenario, &variant)
                };
                values[i] = median_of(results, &scenario, v, system, &metric);
            }
            Row {
                scenario,
                variant,
                metric,
                values,
            }
        })
        .collect()
}

/// Every edge/peer ratio in `results`, as JSON objects.
pub fn ratios(results: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for row in rows(results) {
        let Some(edge) = row.values[0] else { continue };
        for (i, peer) in SYSTEMS.iter().enumerate().skip(1) {
            if let Some(value) = row.values[i] {
                out.push(json!({
                    "scenario": row.scenario,
                    "variant": row.variant,
                    "peer_variant": peer_variant(&row.scenario, &row.variant),
                    "metric": row.metric,
                    "peer": peer,
                    "edge": edge,
                    "peer_value": value,
                    "ratio": edge / value,
                    "edge_better": if higher_is_better(&row.metric) { edge > value } else { edge < value },
                }));
            }
        }
    }
    out
}

/// A figure for people: thousands separated above 1000, three significant digits below.
pub fn number(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A peer's cell: its figure and the ratio edge/peer.
fn peer_cell(edge: Option<f64>, peer: Option<f64>) -> String {
    match (edge, peer) {
        (Some(e), Some(p)) => format!("{} ({:.2}×)", number(p), e / p),
        (None, Some(p)) => number(p),
        _ => String::new(),
    }
}

/// Which systems have any figure in `rows`.
fn present(rows: &[Row]) -> Vec<usize> {
    (0..SYSTEMS.len())
        .filter(|&i| rows.iter().any(|r| r.values[i].is_some()))
        .collect()
}

/// The rows as an aligned text table.
pub fn console(rows: &[Row]) -> String {
    let columns = present(rows);
    let mut lines = vec![];
    let names: Vec<String> = columns
        .iter()
        .map(|&i| {
            if i == 0 {
                "edge".to_string()
            } else {
                format!("{} (edge/{})", column_name(i), SYSTEMS[i])
            }
        })
        .collect();
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(24)).collect();
    let mut header = format!("  {:<12} {:<26}", "variant", "measure");
    for (name, width) in names.iter().zip(&widths) {
        header.push_str(&format!(" {name:>width$}"));
    }
    lines.push(header);
    for row in rows {
        let mut line = format!("  {:<12} {:<26}", row.variant, label(&row.metric));
        for (&i, width) in columns.iter().zip(&widths) {
            let cell = if i == 0 {
                row.values[0].map(number).unwrap_or_default()
            } else {
                peer_cell(row.values[0], row.values[i])
            };
            line.push_str(&format!(" {cell:>width$}"));
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let columns = present(rows);
    let mut out = String::from("| scenario | measure |");
    let mut rule = String::from("| --- | --- |");
    for &i in &columns {
        if i == 0 {
            out.push_str(" edge (V8) |");
        } else {
            out.push_str(&format!(" {} (edge/{}) |", column_name(i), SYSTEMS[i]));
        }
        rule.push_str(" ---: |");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for row in rows {
        out.push_str(&format!(
            "| `{}` | {} {} |",
            row.scenario,
            row.variant,
            label(&row.metric)
        ));
        for &i in &columns {
            let cell = if i == 0 {
                row.values[0].map(number).unwrap_or_default()
            } else {
                peer_cell(row.values[0], row.values[i])
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
