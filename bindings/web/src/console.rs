//! `console.*` output from scripts, as `tracing` events tagged with the tenant.

use deno_core::{OpState, op2};

/// Fields attached to every `console.*` line an isolate prints.
#[derive(Clone, Debug, Default)]
pub struct ConsoleLabel {
    /// The tenant (app name) the isolate runs.
    pub tenant: String,
}

/// Emits one formatted `console.*` line. `level` follows Deno's console: 0 debug, 1 info/log,
/// 2 warn, 3 error.
#[op2(fast)]
pub fn op_edge_console(state: &mut OpState, #[string] msg: &str, #[smi] level: u32) {
    let tenant = state.borrow::<ConsoleLabel>().tenant.as_str();
    let msg = msg.strip_suffix('\n').unwrap_or(msg);
    match level {
        0 => tracing::debug!(target: "edge::console", tenant, "{msg}"),
        1 => tracing::info!(target: "edge::console", tenant, "{msg}"),
        2 => tracing::warn!(target: "edge::console", tenant, "{msg}"),
        _ => tracing::error!(target: "edge::console", tenant, "{msg}"),
    }
}
