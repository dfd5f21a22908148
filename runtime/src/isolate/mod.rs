//! JavaScript isolates: one tenant's script running on a thread of its own.
//!
//! An isolate is `!Send`, and the quickjs engine backend keeps a per-thread table of native
//! functions that is never freed (about 50 runtimes fill it, after which calls go to the wrong
//! function). So every isolate gets a fresh OS thread for its whole life and the thread exits
//! when the isolate is dropped; no thread ever hosts a second runtime. The front door talks to
//! an isolate only through [`IsolateHandle`]: an unbounded channel of [`Invocation`]s, each with
//! a oneshot for its reply, and one of [`LocalTask`]s, work the front door runs on the
//! isolate's thread (serving the connections whose requests go to it, so that they reach it
//! without crossing threads). One isolate serves many requests concurrently, as Workers do.

#[cfg(feature = "v8")]
mod array_buffers;
mod builtins;
mod commonjs;
mod embedded;
mod engine;
mod header_block;
mod incoming;
mod js_worker;
mod loader;
pub mod local_tasks;
mod nesting;
mod nudge;
mod ops;
mod pool;
mod request_body;
mod resolve;
mod respond;
mod rules;
pub mod snapshot;
mod sources;
mod thread;
mod transpile;
mod turn;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::AppConfig;

pub use crate::worker::{
    Event, FetchRequest, Invocation, InvocationBody, LoadError, Reply, RequestBody, ScheduledEvent,
};
pub use js_worker::JsWorker;
pub use local_tasks::{LocalTask, Stopping};
pub(crate) use ops::edge_host;
pub use pool::WarmPool;
pub(crate) use thread::USER_AGENT;

/// Everything an isolate thread needs to run one app.
#[derive(Clone)]
pub struct IsolateSpec {
    /// Unique across the node's life; tells a tenant which isolate is reporting.
    pub id: u64,
    /// The app to run.
    pub app: Arc<AppConfig>,
    /// The startup snapshot every isolate is restored from.
    pub snapshot: &'static [u8],
    /// How long an isolate with nothing to do stays warm.
    pub idle_timeout: Duration,
    /// The app's limits, resolved against the node's defaults and ceilings.
    pub limits: crate::limits::Limits,
    /// The tenant's counters.
    pub stats: Arc<crate::limits::TenantStats>,
    /// Whether CPU and wall-clock limits are enforced (off only to measure their cost).
    pub enforce_limits: bool,
    /// The node's bindings, whose extensions every isolate has.
    pub registry: edge_binding::Registry,
    /// What the app's bindings (KV namespaces, …) are, ready to install into an isolate.
    pub bindings: edge_binding::AppBindings,
    /// The node's count of isolates running an app: this one counts from when it is given
    /// its app until its thread ends (its `waitUntil` work included).
    pub live: Arc<crate::server::InFlight>,
    /// The files this version of the app loaded, shared by all its isolates.
    pub(crate) sources: Arc<sources::Sources>,
}

/// How an isolate reports on its life to whoever owns it (the tenant).
///
/// Calls come from the isolate's own thread.
pub trait Supervisor: Send + Sync + 'static {
    /// The main module evaluated and a fetch handler was found.
    fn loaded(&self, isolate: u64);
    /// The app failed to load; the error's message says what and where.
    fn load_failed(&self, isolate: u64, error: LoadError);
    /// The isolate has been idle past its timeout with nothing in flight. Return true to let it
    /// stop; after a true return no further invocations may be sent to it.
    fn try_retire(&self, isolate: u64) -> bool;
    /// The isolate stopped. Invocations still queued for it are handed back to be re-dispatched
    /// (or answered with an error).
    fn exited(&self, isolate: u64, leftover: Vec<Invocation>);
}

/// The sending side of a running isolate.
#[derive(Clone)]
pub struct IsolateHandle {
    /// The isolate's id.
    pub id: u64,
    tx: mpsc::UnboundedSender<Invocation>,
    tasks: mpsc::UnboundedSender<LocalTask>,
}

impl IsolateHandle {
    /// Queues an invocation; gives it back if the isolate has already stopped.
    #[allow(
        clippy::result_large_err,
        reason = "the invocation is handed back whole to be re-dispatched; boxing it would add an allocation to every request"
    )]
    pub fn send(&self, inv: Invocation) -> Result<(), Invocation> {
        self.tx.send(inv).map_err(|e| e.0)
    }

    /// Hands `task` to the isolate's thread to run beside it; gives it back if the thread no
    /// longer takes tasks (the isolate stopped).
    pub fn run(&self, task: LocalTask) -> Result<(), LocalTask> {
        self.tasks.send(task).map_err(|e| e.0)
    }
}

/// Starting an isolate failed: no thread could be started for it.
pub struct SpawnError {
    /// Why.
    pub error: std::io::Error,
    /// The first task, handed back to be run elsewhere.
    pub task: Option<LocalTask>,
}

/// Starts an isolate for `spec`: a pre-started one from `pool` when one fits, else one on a new
/// thread. It loads the app, then serves what arrives on the handle. `first_task` is queued
/// before the isolate's thread starts, so the thread runs it before it loads the app (a
/// connection reads its first request while the app loads).
pub fn spawn(
    spec: IsolateSpec,
    supervisor: Arc<dyn Supervisor>,
    pool: Option<&WarmPool>,
    first_task: Option<LocalTask>,
) -> Result<IsolateHandle, SpawnError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (tasks, tasks_rx) = mpsc::unbounded_channel();
    if let Some(task) = first_task {
        // The receiver is in the assignment below: this cannot fail.
        let _ = tasks.send(task);
    }
    let id = spec.id;
    let handle = IsolateHandle { id, tx, tasks };
    let mut assignment = thread::Assignment {
        spec,
        rx,
        tasks: tasks_rx,
        supervisor,
    };
    if let Some(pool) = pool {
        match pool.assign(assignment) {
            Ok(()) => return Ok(handle),
            Err(back) => assignment = back,
        }
    }
    let blank = thread::Blank {
        snapshot: assignment.spec.snapshot,
        memory_bytes: assignment.spec.limits.memory_bytes,
        bindings: assignment.spec.registry.clone(),
    };
    let name = format!("isolate-{}", assignment.spec.app.name);
    let (assign_tx, assign_rx) = std::sync::mpsc::sync_channel(1);
    if let Err(error) = thread::spawn(name, blank, assign_rx, None) {
        let task = assignment.tasks.try_recv().ok();
        return Err(SpawnError { error, task });
    }
    // The thread waits for this; if it died at birth, the handle's queues are closed and the
    // tenant starts another isolate on its next request.
    let _ = assign_tx.send(assignment);
    Ok(handle)
}
