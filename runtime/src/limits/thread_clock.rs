//! The CPU-time clock of one thread, readable from any thread (Linux/Unix
//! `pthread_getcpuclockid`). The isolate thread reads it around each event-loop turn; the
//! watchdog reads it from outside while a turn runs. Also: handing freed memory back to the OS.
#![allow(
    unsafe_code,
    reason = "two libc calls with no Rust wrapper; each use is documented below"
)]

use std::time::Duration;

/// A thread's CPU clock. Valid while that thread is alive.
#[derive(Clone, Copy, Debug)]
pub struct ThreadClock(libc::clockid_t);

impl ThreadClock {
    /// The calling thread's clock.
    pub fn current() -> std::io::Result<Self> {
        let mut id: libc::clockid_t = 0;
        // SAFETY: `pthread_self()` is the calling (live) thread; `id` is a valid out-pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(Self(id))
    }

    /// CPU time the thread has used since it started, or `None` if the thread is gone.
    pub fn now(&self) -> Option<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; an invalid clock id only yields an error code.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
}

/// Returns freed heap memory to the operating system (glibc keeps it in its arenas
/// otherwise). Called after an isolate that hit a limit is dropped.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cpu_not_sleep() {
        let clock = ThreadClock::current().unwrap();
        let t0 = clock.now().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let slept = clock.now().unwrap() - t0;
        assert!(
            slept < Duration::from_millis(10),
            "sleep counted as CPU: {slept:?}"
        );
        // Spin until the clock shows 20 ms of CPU (however long a loaded machine takes).
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while clock.now().unwrap() - t0 < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the CPU clock does not advance ({x})"
            );
        }
    }

    #[test]
    fn readable_from_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(ThreadClock::current().unwrap()).unwrap();
            let mut x = 0u64;
            while stop_rx.try_recv().is_err() {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            x
        });
        let clock = rx.recv().unwrap();
        // Read from this thread until the spinning thread's clock shows 20 ms.
        let start = std::time::Instant::now();
        let mut used = Duration::ZERO;
        while used < Duration::from_millis(20) && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
            used = clock.now().unwrap();
        }
        stop_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(used >= Duration::from_millis(20), "{used:?}");
    }
}
