//! Per-app counters: invocations, CPU used, peak heap, terminations by limit, responses by
//! status class and their latency, and usage in the serverless cost model (invocations,
//! CPU-ms, GB-seconds). An app's counters live as long as the node, across its versions, so
//! they only go up (what metrics scrapers and usage metering need).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

use super::LimitKind;

/// Upper bounds of the request latency histogram's buckets, in seconds: 1 ms to 30 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters kept for one app across all its isolates and versions.
#[derive(Debug)]
pub struct TenantStats {
    invocations: AtomicU64,
    cpu_ns: AtomicU64,
    peak_heap_bytes: AtomicU64,
    terminations: [AtomicU64; 4],
    /// Responses by status class (1xx to 5xx).
    responses: [AtomicU64; 5],
    /// Seconds from a request's arrival to its response head.
    latency: Histogram,
    /// Wall-clock time of invocations.
    wall_ns: AtomicU64,
    /// Memory limit times wall-clock time of invocations, in MiB·ms.
    mib_ms: AtomicU64,
    /// The handlers the app's code exports (`fetch`, `scheduled`, `queue`), as last loaded.
    handlers: std::sync::Mutex<Vec<String>>,
    /// WebSockets open, over all the app's isolates.
    websockets: AtomicU32,
}

impl Default for TenantStats {
    fn default() -> Self {
        Self {
            invocations: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            peak_heap_bytes: AtomicU64::new(0),
            terminations: Default::default(),
            responses: Default::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
            wall_ns: AtomicU64::new(0),
            mib_ms: AtomicU64::new(0),
            handlers: Default::default(),
            websockets: AtomicU32::new(0),
        }
    }
}

/// A point-in-time copy of [`TenantStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests handed to the app.
    pub invocations: u64,
    /// CPU time charged to the app's invocations.
    pub cpu: Duration,
    /// The largest heap any of its isolates was seen to use, in bytes.
    pub peak_heap_bytes: u64,
    /// Isolates terminated, by the limit that was breached (indexed by [`LimitKind::index`]).
    pub terminations: [u64; 4],
    /// Responses the front door sent for the app, by status class (`[0]` is 1xx, `[4]` 5xx).
    pub responses: [u64; 5],
    /// Wall-clock time of the app's invocations (from handing one over to its outcome).
    pub wall: Duration,
    /// The app's memory limit times the wall-clock time of its invocations, in MiB·ms.
    pub mib_ms: u64,
}

impl StatsSnapshot {
    /// Terminations for one limit.
    pub fn terminations_for(&self, kind: LimitKind) -> u64 {
        self.terminations[kind.index()]
    }

    /// GB-seconds: memory limit (GiB) times wall-clock time (s), the unit serverless
    /// platforms bill duration in.
    pub fn gb_seconds(&self) -> f64 {
        self.mib_ms as f64 / 1024.0 / 1000.0
    }
}

impl TenantStats {
    /// Counts one more open WebSocket, unless `limit` are open already (then false).
    pub fn open_websocket(&self, limit: u32) -> bool {
        self.websockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// A WebSocket counted by [`TenantStats::open_websocket`] closed.
    pub fn closed_websocket(&self) {
        let _ = self
            .websockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// WebSockets open now.
    pub fn websockets_open(&self) -> u32 {
        self.websockets.load(Ordering::Acquire)
    }

    /// Records the handlers the app's code exports, when it loads.
    pub fn set_handlers(&self, handlers: impl IntoIterator<Item = String>) {
        *self.handlers.lock().unwrap_or_else(|p| p.into_inner()) = handlers.into_iter().collect();
    }

    /// The handlers the app's code exported when it last loaded (none before, or for a wasm
    /// component).
    pub fn handlers(&self) -> Vec<String> {
        self.handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One more invocation.
    pub fn invoked(&self) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
    }

    /// CPU time charged.
    pub fn add_cpu(&self, cpu: Duration) {
        self.cpu_ns
            .fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A heap size observed.
    pub fn observe_heap(&self, bytes: u64) {
        self.peak_heap_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// An isolate was terminated for breaching `kind`.
    pub fn terminated(&self, kind: LimitKind) {
        self.terminations[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The front door sent a response with `status`, `took` after the request arrived.
    pub fn responded(&self, status: u16, took: Duration) {
        if let Some(class) = (status / 100).checked_sub(1).map(usize::from)
            && let Some(counter) = self.responses.get(class)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// An invocation ran for `wall` under a memory limit of `memory_bytes`.
    pub fn ran(&self, wall: Duration, memory_bytes: usize) {
        self.wall_ns
            .fetch_add(wall.as_nanos() as u64, Ordering::Relaxed);
        let mib_ms = ((memory_bytes >> 20) as u128 * wall.as_micros() / 1000) as u64;
        self.mib_ms.fetch_add(mib_ms, Ordering::Relaxed);
    }

    /// The latency histogram (for the metrics endpoint).
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            invocations: self.invocations.load(Ordering::Relaxed),
            cpu: Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)),
            peak_heap_bytes: self.peak_heap_bytes.load(Ordering::Relaxed),
            terminations: std::array::from_fn(|i| self.terminations[i].load(Ordering::Relaxed)),
            responses: std::array::from_fn(|i| self.responses[i].load(Ordering::Relaxed)),
            wall: Duration::from_nanos(self.wall_ns.load(Ordering::Relaxed)),
            mib_ms: self.mib_ms.load(Ordering::Relaxed),
        }
    }
}
