//! Per-tenant counters: invocations, CPU used, peak heap, terminations by limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::LimitKind;

/// Counters kept for one tenant across all its isolates.
#[derive(Debug, Default)]
pub struct TenantStats {
    invocations: AtomicU64,
    cpu_ns: AtomicU64,
    peak_heap_bytes: AtomicU64,
    terminations: [AtomicU64; 4],
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
}

impl StatsSnapshot {
    /// Terminations for one limit.
    pub fn terminations_for(&self, kind: LimitKind) -> u64 {
        self.terminations[kind.index()]
    }
}

impl TenantStats {
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

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            invocations: self.invocations.load(Ordering::Relaxed),
            cpu: Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)),
            peak_heap_bytes: self.peak_heap_bytes.load(Ordering::Relaxed),
            terminations: std::array::from_fn(|i| self.terminations[i].load(Ordering::Relaxed)),
        }
    }
}
