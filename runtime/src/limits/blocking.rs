//! CPU an isolate's work uses off its own thread. Some ops (Web Crypto's key derivation,
//! encryption and key generation; DNS look-ups) run on the blocking pool of the isolate's
//! event loop, where the isolate thread's clock does not see them. Each isolate has a pool of
//! its own, at most [`MAX_THREADS`] threads, so one tenant's blocking work neither waits behind
//! another's nor runs more than that many threads at once; this counts the CPU its threads use,
//! for the host to charge to the invocations in flight like CPU on the isolate thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use super::thread_clock::ThreadClock;

/// Blocking-pool threads one isolate may run at once.
pub const MAX_THREADS: usize = 2;

/// How long an idle blocking thread waits for more work before it exits. Short: a live thread
/// is how the host knows blocking work may be running (see [`BlockingCpu::busy`]).
pub const KEEP_ALIVE: Duration = Duration::from_millis(50);

/// The CPU used by one isolate's blocking-pool threads.
#[derive(Default)]
pub struct BlockingCpu {
    /// Threads alive now, with their clocks.
    live: Mutex<Vec<(ThreadId, ThreadClock)>>,
    /// How many are alive (read without the lock).
    live_count: AtomicUsize,
    /// CPU (ns) of the threads that have exited.
    exited_ns: AtomicU64,
    /// CPU (ns) already handed out by [`BlockingCpu::take_new`].
    taken_ns: AtomicU64,
    /// Woken when a thread starts: the isolate, idle until its blocking work is done, learns
    /// that the work has begun and charges it as it runs (see [`BlockingCpu::wake_on_start`]).
    started: futures::task::AtomicWaker,
}

impl BlockingCpu {
    /// Called on a blocking thread as it starts.
    pub fn thread_started(&self) {
        if let Ok(clock) = ThreadClock::current() {
            self.lock().push((std::thread::current().id(), clock));
            self.live_count.fetch_add(1, Ordering::Relaxed);
            self.started.wake();
        }
    }

    /// Wakes `waker` when the next blocking thread starts. An isolate whose turn handed work to
    /// the pool may find no thread alive yet (a new thread starts on its own time); without
    /// this it would sleep until the work is done and charge it only then, after its answer.
    pub fn wake_on_start(&self, waker: &std::task::Waker) {
        self.started.register(waker);
    }

    /// Called on a blocking thread as it exits: its CPU moves to the exited total.
    pub fn thread_stopped(&self) {
        let me = std::thread::current().id();
        let mut live = self.lock();
        if let Some(i) = live.iter().position(|(id, _)| *id == me) {
            let (_, clock) = live.swap_remove(i);
            let used = clock.now().unwrap_or_default();
            self.exited_ns.fetch_add(nanos(used), Ordering::Relaxed);
            self.live_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether any blocking thread is alive, so blocking work may be running now.
    pub fn busy(&self) -> bool {
        self.live_count.load(Ordering::Relaxed) > 0
    }

    /// CPU used by the blocking threads since the last call.
    pub fn take_new(&self) -> Duration {
        if !self.busy()
            && self.exited_ns.load(Ordering::Relaxed) == self.taken_ns.load(Ordering::Relaxed)
        {
            return Duration::ZERO;
        }
        let total = {
            let live = self.lock();
            live.iter()
                .map(|(_, clock)| nanos(clock.now().unwrap_or_default()))
                .sum::<u64>()
                + self.exited_ns.load(Ordering::Relaxed)
        };
        let before = self.taken_ns.fetch_max(total, Ordering::Relaxed);
        Duration::from_nanos(total.saturating_sub(before))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ThreadId, ThreadClock)>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn blocking_threads_cpu_is_counted_once() {
        let cpu = Arc::new(BlockingCpu::default());
        let rt = {
            let (start, stop) = (cpu.clone(), cpu.clone());
            tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(MAX_THREADS)
                .thread_keep_alive(KEEP_ALIVE)
                .on_thread_start(move || start.thread_started())
                .on_thread_stop(move || stop.thread_stopped())
                .build()
                .unwrap()
        };
        rt.block_on(async {
            tokio::task::spawn_blocking(|| {
                // 30 ms of this thread's CPU, however long a loaded machine takes to give it.
                let clock = ThreadClock::current().unwrap();
                let start = clock.now().unwrap();
                while clock.now().unwrap() - start < Duration::from_millis(30) {}
            })
            .await
            .unwrap();
        });
        assert!(cpu.busy());
        let first = cpu.take_new();
        assert!(first >= Duration::from_millis(20), "{first:?}");
        assert!(cpu.take_new() < Duration::from_millis(5), "counted twice");
        std::thread::sleep(KEEP_ALIVE * 4);
        assert!(!cpu.busy(), "the idle thread should have exited");
        assert!(cpu.take_new() < Duration::from_millis(5));
    }
}
