//! `GET /metrics`: the node's metrics in the Prometheus text format (OpenMetrics), encoded
//! with `prometheus-client` from the counters the node keeps anyway, read at each scrape:
//! per app, responses by status class, a latency histogram, invocations, CPU and wall-clock
//! time, GB-seconds, terminations by limit, requests in flight and waiting; for the node,
//! apps served, apps with a load error, live isolates and requests in flight.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::limits::LimitKind;
use crate::node::Node;

/// The `content-type` of the exposition.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition of `node`'s metrics now.
pub(super) fn render(node: &Arc<Node>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeMetrics(node.clone())));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

struct NodeMetrics(Arc<Node>);

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeMetrics")
    }
}

/// Samples of one metric: each label set (the app, …) with its value.
type PerApp<T> = Vec<(Vec<(&'static str, String)>, T)>;

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: PerApp<f64>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in &samples {
        metric
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: PerApp<f64>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in &samples {
        if labels.is_empty() {
            // A node-wide value: no label set at all (`name 2.0`, not `name{} 2.0`).
            metric.encode_gauge(value)?;
        } else {
            metric.encode_family(labels)?.encode_gauge(value)?;
        }
    }
    Ok(())
}

impl Collector for NodeMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let node = &self.0;
        let tenants = node.tenants();
        let app = |name: &str| vec![("app", name.to_string())];
        let per_app = |f: &dyn Fn(&crate::tenant::Tenant) -> f64| -> PerApp<f64> {
            tenants.iter().map(|t| (app(t.name()), f(t))).collect()
        };

        let mut responses = Vec::new();
        for t in &tenants {
            let stats = t.stats();
            for (i, n) in stats.responses.iter().enumerate() {
                let labels = vec![
                    ("app", t.name().to_string()),
                    ("class", format!("{}xx", i + 1)),
                ];
                responses.push((labels, *n as f64));
            }
        }
        counter(
            &mut encoder,
            "edge_requests",
            "Responses sent for an app, by status class.",
            responses,
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "edge_request_duration_seconds",
                "Time from a request's arrival to its response head.",
                None,
                MetricType::Histogram,
            )?;
            for t in &tenants {
                let labels = app(t.name());
                t.counters()
                    .latency()
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "edge_invocations",
            "Invocations of an app's handlers (requests, cron and queue events).",
            per_app(&|t| t.stats().invocations as f64),
        )?;
        counter(
            &mut encoder,
            "edge_cpu_seconds",
            "CPU time charged to an app's invocations.",
            per_app(&|t| t.stats().cpu.as_secs_f64()),
        )?;
        counter(
            &mut encoder,
            "edge_wall_seconds",
            "Wall-clock time of an app's invocations.",
            per_app(&|t| t.stats().wall.as_secs_f64()),
        )?;
        counter(
            &mut encoder,
            "edge_usage_gb_seconds",
            "An app's memory limit in GB times the wall-clock time of its invocations.",
            per_app(&|t| t.stats().gb_seconds()),
        )?;
        let mut terminations = Vec::new();
        for t in &tenants {
            let stats = t.stats();
            for kind in LimitKind::ALL {
                let labels = vec![
                    ("app", t.name().to_string()),
                    ("reason", kind.key().to_string()),
                ];
                terminations.push((labels, stats.terminations_for(kind) as f64));
            }
        }
        counter(
            &mut encoder,
            "edge_terminations",
            "Invocations ended for breaking a limit, by limit.",
            terminations,
        )?;
        gauge(
            &mut encoder,
            "edge_peak_heap_bytes",
            "The largest heap any isolate of an app was seen to use.",
            per_app(&|t| t.stats().peak_heap_bytes as f64),
        )?;
        gauge(
            &mut encoder,
            "edge_app_requests_in_flight",
            "Requests an app is serving now.",
            per_app(&|t| t.gate().in_use() as f64),
        )?;
        gauge(
            &mut encoder,
            "edge_app_requests_waiting",
            "Requests waiting for one of an app's slots now.",
            per_app(&|t| t.gate().waiting() as f64),
        )?;
        let node_wide = |v: f64| vec![(Vec::new(), v)];
        gauge(
            &mut encoder,
            "edge_apps",
            "Apps the node serves.",
            node_wide(tenants.len() as f64),
        )?;
        gauge(
            &mut encoder,
            "edge_apps_with_load_errors",
            "Apps whose latest change did not load (or that cannot be served).",
            node_wide(node.last_errors().len() as f64),
        )?;
        gauge(
            &mut encoder,
            "edge_isolates_live",
            "JavaScript isolates running an app now.",
            node_wide(node.isolates().count() as f64),
        )?;
        gauge(
            &mut encoder,
            "edge_requests_in_flight",
            "Requests the front door is serving now, over all apps.",
            node_wide(node.requests().count() as f64),
        )?;
        // The bindings' own (KV operations, queue depths), grouped by metric.
        let mut samples = node.bindings().metrics();
        while !samples.is_empty() {
            let first = &samples[0];
            let (name, help, kind) = (first.name, first.help, first.kind);
            let (these, rest): (Vec<_>, Vec<_>) = samples.into_iter().partition(|s| s.name == name);
            samples = rest;
            let values: PerApp<f64> = these.into_iter().map(|s| (s.labels, s.value)).collect();
            match kind {
                edge_binding::MetricKind::Counter => counter(&mut encoder, name, help, values)?,
                edge_binding::MetricKind::Gauge => gauge(&mut encoder, name, help, values)?,
            }
        }
        Ok(())
    }
}
