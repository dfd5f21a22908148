//! The time KV expirations are measured against, injectable so expiry can be tested without
//! waiting the 60 seconds Workers requires as the shortest TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as KV expirations are expressed.
pub trait Clock: Send + Sync + 'static {
    /// The current time in seconds since the Unix epoch.
    fn now_secs(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        system_secs()
    }
}

fn system_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The system clock plus an offset that can only grow: tests advance it to make entries
/// expire. `edge` uses it when started with `EDGE_KV_CLOCK=manual`, and its admin endpoint
/// then accepts `POST /v1/clock/advance?secs=N`.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    offset: Arc<AtomicU64>,
    /// Where a frozen clock stands (before any advance); `None` follows the system clock.
    frozen_at: Option<u64>,
}

impl ManualClock {
    /// A clock that reads the system time until advanced.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that stands at the current system second and moves only when advanced, so a
    /// test cannot cross a second boundary by being slow.
    pub fn frozen() -> Self {
        Self {
            offset: Arc::default(),
            frozen_at: Some(system_secs()),
        }
    }

    /// Moves the clock `secs` seconds forward.
    pub fn advance(&self, secs: u64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.frozen_at.unwrap_or_else(system_secs) + self.offset.load(Ordering::SeqCst)
    }
}
