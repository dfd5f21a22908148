//! Per-invocation limits: CPU time, memory, wall-clock time and outbound subrequests.
//!
//! An app asks for limits in `edge.toml` (`[limits]`); the node supplies defaults for what it
//! does not ask, and ceilings it cannot exceed. Self-hosted workerd enforces none of these;
//! edge enforces all of them, so one tenant cannot hurt the others:
//!
//! - CPU is the isolate thread's CPU clock, read around every turn of its event loop; a
//!   watchdog thread ([`watchdog`]) reads the same clock from outside and terminates a turn that
//!   runs past the budget (an endless loop never returns to the event loop on its own).
//!   Invocations running concurrently in one isolate share its turns: a turn's CPU is split
//!   evenly between every invocation in flight during it (including those that started and
//!   finished within it), and each invocation that starts in a turn adds its limit to the
//!   turn's budget. A tenant can therefore never use more CPU than its limit times the
//!   invocations it was sent, and busy-but-legal requests under load are not charged for
//!   their neighbours.
//! - Memory is the isolate's heap plus its ArrayBuffer contents ([`memory`]): the heap has the
//!   engine's heap limit, and near it a callback terminates the isolate and grants a little
//!   headroom so the process never aborts; buffers (outside the heap on V8) are counted by an
//!   allocator of ours and refused, then terminated, past what the heap leaves.
//! - Wall-clock time and subrequests are counted per invocation. An invocation past its
//!   wall-clock deadline while no script runs is stopped alone (the isolate keeps serving);
//!   a turn still running at the deadline is terminated by the watchdog.
//!
//! A breach ends the invocation with `503` and an `edge-error` header naming the limit; the
//! isolate is then discarded (its state may be corrupt) and rebuilt on the next request.

pub mod blocking;
pub mod memory;
pub mod meter;
mod stats;
pub mod thread_clock;
pub mod watchdog;

pub use stats::{StatsSnapshot, TenantStats};

use std::time::Duration;

use serde::Deserialize;

/// Which limit an invocation broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// CPU time per invocation.
    Cpu,
    /// Heap memory per isolate.
    Memory,
    /// Wall-clock time per invocation.
    Wall,
    /// Outbound `fetch` calls per invocation.
    Subrequests,
}

impl LimitKind {
    /// Every kind, in a fixed order (for counters).
    pub const ALL: [LimitKind; 4] = [Self::Cpu, Self::Memory, Self::Wall, Self::Subrequests];

    /// The `edge.toml` key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Cpu => "cpu_ms",
            Self::Memory => "memory_mb",
            Self::Wall => "wall_ms",
            Self::Subrequests => "subrequests",
        }
    }

    /// A stable index into [`LimitKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Cpu => 0,
            Self::Memory => 1,
            Self::Wall => 2,
            Self::Subrequests => 3,
        }
    }

    /// The error code the runtime answers with.
    pub fn error_code(self) -> crate::ErrorCode {
        match self {
            Self::Cpu => crate::ErrorCode::CpuLimit,
            Self::Memory => crate::ErrorCode::MemoryLimit,
            Self::Wall => crate::ErrorCode::WallLimit,
            Self::Subrequests => crate::ErrorCode::SubrequestLimit,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v.checked_sub(1)? as usize).copied()
    }

    pub(crate) fn as_u8(self) -> u8 {
        self.index() as u8 + 1
    }
}

/// Limits in force for one app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per invocation.
    pub cpu: Duration,
    /// Memory per isolate (heap plus ArrayBuffer contents), in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time per invocation.
    pub wall: Duration,
    /// Outbound `fetch` calls per invocation.
    pub subrequests: u32,
    /// Requests the app serves at once (past it they wait briefly, then get `503
    /// overloaded`).
    pub concurrent_requests: u32,
    /// The largest request body the app accepts, in bytes. A request declaring a longer body
    /// is answered `413 payload-too-large` without reaching the app; a body sent without a
    /// length that grows past it fails to read in the script.
    pub request_body_bytes: u64,
    /// WebSockets the app may have open at once, over all its isolates; an upgrade past it is
    /// answered `503 overloaded`.
    pub websockets: u32,
}

impl Limits {
    /// Workers' own request body limit (its free and pro plans): 100 MiB.
    pub const DEFAULT_REQUEST_BODY_BYTES: u64 = 100 << 20;
}

impl Default for Limits {
    /// Workers' defaults: 50 ms CPU, 128 MiB, 30 s wall clock, 50 subrequests, 100 MiB
    /// request bodies; and 1000 requests and 1000 WebSockets at once.
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            memory_bytes: 128 << 20,
            wall: Duration::from_secs(30),
            subrequests: 50,
            concurrent_requests: 1000,
            request_body_bytes: Limits::DEFAULT_REQUEST_BODY_BYTES,
            websockets: 1000,
        }
    }
}

/// What an app's `[limits]` table asks for; absent keys take the node's defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// `cpu_ms`
    pub cpu_ms: Option<u64>,
    /// `memory_mb`
    pub memory_mb: Option<u64>,
    /// `wall_ms`
    pub wall_ms: Option<u64>,
    /// `subrequests`
    pub subrequests: Option<u64>,
    /// `concurrent_requests`
    pub concurrent_requests: Option<u64>,
    /// `request_body_mb`
    pub request_body_mb: Option<u64>,
    /// `websockets`
    pub websockets: Option<u64>,
}

impl LimitSettings {
    /// Checks each value is in range; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let check = |key: &str, v: Option<u64>, min: u64, max: u64| match v {
            Some(v) if v < min || v > max => Err((
                format!("limits.{key}"),
                format!("{v} is out of range: use {min} to {max}"),
            )),
            _ => Ok(()),
        };
        check("cpu_ms", self.cpu_ms, 1, 3_600_000)?;
        check("memory_mb", self.memory_mb, 16, 65_536)?;
        check("wall_ms", self.wall_ms, 1, 86_400_000)?;
        check("subrequests", self.subrequests, 0, 1_000_000)?;
        check(
            "concurrent_requests",
            self.concurrent_requests,
            1,
            1_000_000,
        )?;
        check("request_body_mb", self.request_body_mb, 1, 1 << 20)?;
        check("websockets", self.websockets, 0, 1_000_000)?;
        Ok(())
    }
}

/// A node's defaults and ceilings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    /// What an app gets for a limit it does not set.
    pub defaults: Limits,
    /// The most an app may set.
    pub ceilings: Limits,
}

impl Default for NodeLimits {
    fn default() -> Self {
        Self {
            defaults: Limits::default(),
            ceilings: Limits {
                cpu: Duration::from_secs(30),
                memory_bytes: 1 << 30,
                wall: Duration::from_secs(15 * 60),
                subrequests: 1000,
                concurrent_requests: 1000,
                request_body_bytes: Limits::DEFAULT_REQUEST_BODY_BYTES,
                websockets: 10_000,
            },
        }
    }
}

impl NodeLimits {
    /// The limits for an app asking for `asked`: its values, else the defaults, never above
    /// the ceilings. Returns the limits and one message per value that was lowered.
    pub fn resolve(&self, asked: &LimitSettings) -> (Limits, Vec<String>) {
        let mut lowered = Vec::new();
        let mut pick = |key: &str, asked: Option<u64>, default: u64, ceiling: u64| -> u64 {
            let v = asked.unwrap_or(default);
            if v > ceiling {
                lowered.push(format!(
                    "limits.{key} = {v} is above the node's ceiling; using {ceiling}"
                ));
                ceiling
            } else {
                v
            }
        };
        let d = &self.defaults;
        let c = &self.ceilings;
        let cpu = pick("cpu_ms", asked.cpu_ms, ms(d.cpu), ms(c.cpu));
        let memory = pick(
            "memory_mb",
            asked.memory_mb,
            (d.memory_bytes >> 20) as u64,
            (c.memory_bytes >> 20) as u64,
        );
        let wall = pick("wall_ms", asked.wall_ms, ms(d.wall), ms(c.wall));
        let sub = pick(
            "subrequests",
            asked.subrequests,
            d.subrequests as u64,
            c.subrequests as u64,
        );
        let concurrent = pick(
            "concurrent_requests",
            asked.concurrent_requests,
            d.concurrent_requests as u64,
            c.concurrent_requests as u64,
        );
        let body = pick(
            "request_body_mb",
            asked.request_body_mb,
            d.request_body_bytes >> 20,
            c.request_body_bytes >> 20,
        );
        let websockets = pick(
            "websockets",
            asked.websockets,
            d.websockets as u64,
            c.websockets as u64,
        );
        (
            Limits {
                cpu: Duration::from_millis(cpu),
                memory_bytes: (memory as usize) << 20,
                wall: Duration::from_millis(wall),
                subrequests: sub as u32,
                concurrent_requests: concurrent as u32,
                request_body_bytes: body << 20,
                websockets: websockets as u32,
            },
            lowered,
        )
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_ceilings_cap() {
        let node = NodeLimits::default();
        let (l, lowered) = node.resolve(&LimitSettings {
            cpu_ms: Some(10),
            memory_mb: Some(1 << 20),
            ..Default::default()
        });
        assert_eq!(l.cpu, Duration::from_millis(10));
        assert_eq!(l.memory_bytes, 1 << 30);
        assert_eq!(l.wall, Duration::from_secs(30));
        assert_eq!(l.subrequests, 50);
        assert_eq!(lowered.len(), 1);
        assert!(lowered[0].contains("memory_mb"));
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let e = LimitSettings {
            cpu_ms: Some(0),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "limits.cpu_ms");
    }

    #[test]
    fn kinds_round_trip() {
        for k in LimitKind::ALL {
            assert_eq!(LimitKind::from_u8(k.as_u8()), Some(k));
        }
        assert_eq!(LimitKind::from_u8(0), None);
    }
}
