//! `console.*` output from scripts, as `tracing` events tagged with the tenant, within a budget:
//! a script cannot fill the node's disk or drown its neighbours' lines.
//!
//! Each isolate may write [`BURST_BYTES`] at once and [`RATE_BYTES_PER_SEC`] over time (a
//! token bucket); lines past that are dropped, and the drop is logged once when it starts and
//! with the count when output resumes. A line longer than [`LINE_BYTES`] is cut. The CPU spent
//! formatting and writing lines is the isolate's own (it runs on its thread, in its turns).

use std::time::Instant;

use deno_core::{OpState, op2};

/// Bytes of console output an isolate may write in a burst.
pub const BURST_BYTES: usize = 256 << 10;

/// Bytes per second of console output an isolate may keep writing.
pub const RATE_BYTES_PER_SEC: usize = 64 << 10;

/// The longest console line written; the rest is cut.
pub const LINE_BYTES: usize = 16 << 10;

/// Fields attached to every `console.*` line an isolate prints.
#[derive(Clone, Debug, Default)]
pub struct ConsoleLabel {
    /// The tenant (app name) the isolate runs.
    pub tenant: String,
}

/// An isolate's console: its label and its budget, in one piece of op state.
pub(crate) struct ConsoleOut {
    label: ConsoleLabel,
    budget: ConsoleBudget,
}

impl ConsoleOut {
    pub(crate) fn new(label: ConsoleLabel) -> Self {
        Self {
            label,
            budget: ConsoleBudget::default(),
        }
    }
}

/// What an isolate (or a wasm app) may still write, and what it lost.
#[derive(Debug)]
pub struct ConsoleBudget {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl Default for ConsoleBudget {
    fn default() -> Self {
        Self {
            tokens: BURST_BYTES as f64,
            refilled: Instant::now(),
            dropped: 0,
        }
    }
}

impl ConsoleBudget {
    /// Takes `len` bytes from the budget if there are enough.
    fn take(&mut self, len: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * RATE_BYTES_PER_SEC as f64).min(BURST_BYTES as f64);
        if self.tokens < len as f64 {
            return false;
        }
        self.tokens -= len as f64;
        true
    }
}

/// Emits one formatted `console.*` line. `level` follows Deno's console: 0 debug, 1 info/log,
/// 2 warn, 3 error.
#[op2(fast)]
pub fn op_edge_console(state: &mut OpState, #[string] msg: &str, #[smi] level: u32) {
    let ConsoleOut { label, budget } = state.borrow_mut::<ConsoleOut>();
    console_line(&label.tenant, budget, msg, level);
}

/// Emits one line of `tenant`'s console output within `budget` (cut past [`LINE_BYTES`],
/// dropped past the rate). `level`: 0 debug, 1 info, 2 warn, 3 error. Engine-free: the wasm
/// host writes a guest's stdout and stderr lines through it too.
pub fn console_line(tenant: &str, budget: &mut ConsoleBudget, msg: &str, level: u32) {
    let msg = msg.strip_suffix('\n').unwrap_or(msg);
    let mut cut = msg;
    if cut.len() > LINE_BYTES {
        let mut end = LINE_BYTES;
        while !cut.is_char_boundary(end) {
            end -= 1;
        }
        cut = &cut[..end];
    }
    if !budget.take(cut.len().max(1), Instant::now()) {
        if budget.dropped == 0 {
            tracing::warn!(
                target: "edge::console",
                tenant,
                "console output past {} KiB/s: dropping lines",
                RATE_BYTES_PER_SEC >> 10
            );
        }
        budget.dropped += 1;
        return;
    }
    let dropped = std::mem::take(&mut budget.dropped);
    if dropped > 0 {
        tracing::warn!(target: "edge::console", tenant, dropped, "{dropped} console lines were dropped");
    }
    let more = msg.len() - cut.len();
    if more > 0 {
        emit(level, tenant, &format!("{cut}… ({more} more bytes cut)"));
    } else {
        emit(level, tenant, cut);
    }
}

fn emit(level: u32, tenant: &str, msg: &str) {
    match level {
        0 => tracing::debug!(target: "edge::console", tenant, "{msg}"),
        1 => tracing::info!(target: "edge::console", tenant, "{msg}"),
        2 => tracing::warn!(target: "edge::console", tenant, "{msg}"),
        _ => tracing::error!(target: "edge::console", tenant, "{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut budget = ConsoleBudget::default();
        let line = 1024;
        let mut taken = 0;
        while budget.take(line, t0) {
            taken += line;
        }
        assert_eq!(taken, BURST_BYTES);
        // A second later, a second's worth more.
        let mut more = 0;
        while budget.take(line, t0 + Duration::from_secs(1)) {
            more += line;
        }
        assert_eq!(more, RATE_BYTES_PER_SEC);
    }
}
