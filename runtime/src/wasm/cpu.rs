//! CPU time of a wasm invocation. A guest runs inside the polls of its task, on whichever of
//! the front door's threads polls it; [`Metered`] reads that thread's CPU clock around each
//! poll and charges the difference to the invocation. The epoch callback, which wasmtime calls
//! from inside the guest every [`EPOCH_TICK`](super::engine::EPOCH_TICK), adds the running
//! poll's share so far: past the limit the guest traps (`503 cpu-limit`); under it the guest
//! yields, so a busy guest never holds a front-door thread for more than a tick.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::limits::thread_clock::ThreadClock;

/// CPU charged to one invocation.
#[derive(Default)]
pub(super) struct CpuMeter {
    used_ns: AtomicU64,
    /// The polling thread's CPU clock when the running poll began (0: no poll running).
    poll_start_ns: AtomicU64,
}

fn thread_cpu_ns() -> u64 {
    ThreadClock::current()
        .ok()
        .and_then(|c| c.now())
        .map_or(0, |d| d.as_nanos() as u64)
}

impl CpuMeter {
    /// CPU used so far, including the running poll's. Call it from the polling thread (the
    /// epoch callback runs there) or between polls.
    pub(super) fn used(&self) -> Duration {
        let done = self.used_ns.load(Ordering::Relaxed);
        let start = self.poll_start_ns.load(Ordering::Relaxed);
        let running = if start == 0 {
            0
        } else {
            thread_cpu_ns().saturating_sub(start)
        };
        Duration::from_nanos(done + running)
    }
}

pin_project_lite::pin_project! {
    /// `inner`, with the CPU time of each of its polls charged to `meter`.
    pub(super) struct Metered<F> {
        #[pin]
        pub(super) inner: F,
        pub(super) meter: std::sync::Arc<CpuMeter>,
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let start = thread_cpu_ns().max(1);
        this.meter.poll_start_ns.store(start, Ordering::Relaxed);
        let out = this.inner.poll(cx);
        let spent = thread_cpu_ns().saturating_sub(start);
        this.meter.poll_start_ns.store(0, Ordering::Relaxed);
        this.meter.used_ns.fetch_add(spent, Ordering::Relaxed);
        out
    }
}
