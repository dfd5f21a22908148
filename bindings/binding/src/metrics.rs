//! What a binding adds to the node's metrics (`GET /metrics` on the admin endpoint): samples
//! read from its node-wide state at each scrape, encoded by the runtime.

/// Whether a metric only goes up (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Goes only up while the node runs (`…_total`: the runtime adds the suffix).
    Counter,
    /// A value now.
    Gauge,
}

/// One value of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSample {
    /// The metric's name (`edge_kv_operations`), the same for all its samples.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// This sample's labels (`[("namespace", "users"), ("op", "get")]`).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}
