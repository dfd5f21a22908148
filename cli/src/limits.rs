//! Node-wide limit defaults and ceilings (`--cpu-ms`, `--max-cpu-ms`, …).

use std::time::Duration;

use clap::Args;
use edge_runtime::limits::{Limits, NodeLimits};
use edge_runtime::server::FrontDoorLimits;

/// Limits for apps that do not set their own in `[limits]`, and the most any app may set.
#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Default CPU time per invocation, in ms.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    cpu_ms: u64,
    /// Ceiling on an app's `limits.cpu_ms`.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    max_cpu_ms: u64,
    /// Default memory per isolate (JavaScript heap plus ArrayBuffer contents), in MiB.
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    memory_mb: u64,
    /// Ceiling on an app's `limits.memory_mb`.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    max_memory_mb: u64,
    /// Default wall-clock time per invocation, in ms.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    wall_ms: u64,
    /// Ceiling on an app's `limits.wall_ms`.
    #[arg(long, default_value_t = 900_000, value_name = "MS")]
    max_wall_ms: u64,
    /// Default outbound fetches per invocation.
    #[arg(long, default_value_t = 50, value_name = "N")]
    subrequests: u32,
    /// Ceiling on an app's `limits.subrequests`.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_subrequests: u32,
    /// Largest request body accepted, in MiB, for apps that do not set a smaller
    /// `limits.request_body_mb`: a longer one is answered 413 without reaching its app.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    max_body_mb: u64,
    /// Default requests one app serves at once; past it they wait up to --request-wait-ms in a
    /// line as long, then get `503 overloaded` with `retry-after`.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    concurrent_requests: u32,
    /// Ceiling on an app's `limits.concurrent_requests` (by default no more than the default:
    /// an app's own config cannot take a larger share of --node-concurrent-requests).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_concurrent_requests: u32,
    /// Requests the node serves at once over all its apps; past it, as above.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    node_concurrent_requests: usize,
    /// Default WebSockets one app may have open at once (over all its isolates); an upgrade
    /// past it is answered `503 overloaded`.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    websockets: u32,
    /// Ceiling on an app's `limits.websockets`.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_websockets: u32,
    /// How long a request past a bound on requests at once waits for a slot, in ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    request_wait_ms: u64,
    /// Seconds a client may take to send a request head before its connection is closed.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    header_timeout_secs: u64,
    /// Seconds a connection may sit idle between requests before it is closed.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    keep_alive_secs: u64,
    /// Seconds a client may take no bytes of a response before its connection is closed (a
    /// slow reader that keeps reading is never cut).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    send_timeout_secs: u64,
    /// Client connections the node holds at most (never more than three quarters of the
    /// open-file limit); past it new ones get 503 and are closed.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_connections: usize,
    /// Client connections one IP address may hold at most.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_connections_per_ip: usize,
    /// Bytes (keys plus values and metadata) one KV namespace may store, in MiB; a put past
    /// it fails with a 413 quota error. 0 for no quota.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    kv_quota_mb: u64,
    /// Bytes of message bodies one queue may hold (waiting or in flight), in MiB; a send past
    /// it fails. 0 for no quota.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    queue_quota_mb: u64,
    /// Bytes the node's Cache API may hold for all apps together, in MiB; past it the least
    /// recently used entries (of any app) are evicted.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    cache_mb: u64,
    /// Bytes one app's caches (`caches.default` and every `caches.open`) may hold, in MiB; past
    /// it the app's own least recently used entries are evicted.
    #[arg(long, default_value_t = 256, value_name = "MB")]
    cache_app_mb: u64,
    /// Do not enforce CPU and wall-clock limits. Only for measuring what enforcing them costs;
    /// never on a node with untrusted apps.
    #[arg(long)]
    pub no_limits: bool,
}

impl LimitArgs {
    /// The node limits these flags describe. Defaults above a ceiling are lowered to it.
    pub fn node_limits(&self) -> NodeLimits {
        let ceilings = Limits {
            cpu: Duration::from_millis(self.max_cpu_ms),
            memory_bytes: (self.max_memory_mb as usize) << 20,
            wall: Duration::from_millis(self.max_wall_ms),
            subrequests: self.max_subrequests,
            concurrent_requests: self.max_concurrent_requests.max(1),
            request_body_bytes: self.max_body_mb.saturating_mul(1 << 20),
            websockets: self.max_websockets,
        };
        let defaults = Limits {
            cpu: Duration::from_millis(self.cpu_ms).min(ceilings.cpu),
            memory_bytes: ((self.memory_mb as usize) << 20).min(ceilings.memory_bytes),
            wall: Duration::from_millis(self.wall_ms).min(ceilings.wall),
            subrequests: self.subrequests.min(ceilings.subrequests),
            concurrent_requests: self
                .concurrent_requests
                .clamp(1, ceilings.concurrent_requests),
            request_body_bytes: ceilings.request_body_bytes,
            websockets: self.websockets.min(ceilings.websockets),
        };
        NodeLimits { defaults, ceilings }
    }

    /// The most one KV namespace may store, if there is a quota.
    pub fn kv_namespace_quota(&self) -> Option<u64> {
        (self.kv_quota_mb > 0).then(|| self.kv_quota_mb.saturating_mul(1 << 20))
    }

    /// The most one queue may hold, if there is a quota.
    pub fn queue_quota(&self) -> Option<u64> {
        (self.queue_quota_mb > 0).then(|| self.queue_quota_mb.saturating_mul(1 << 20))
    }

    /// What the node's Cache API may hold.
    pub fn cache_bounds(&self) -> edge_cache::Bounds {
        edge_cache::Bounds {
            node_bytes: self.cache_mb.saturating_mul(1 << 20),
            app_bytes: self.cache_app_mb.min(self.cache_mb).saturating_mul(1 << 20),
        }
    }

    /// What the front door allows one request.
    pub fn front_door(&self) -> FrontDoorLimits {
        FrontDoorLimits {
            header_read_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            keep_alive_idle: Duration::from_secs(self.keep_alive_secs.max(1)),
            send_timeout: Duration::from_secs(self.send_timeout_secs.max(1)),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_requests: self.node_concurrent_requests.max(1),
            request_wait: Duration::from_millis(self.request_wait_ms),
            ..FrontDoorLimits::default()
        }
    }
}
