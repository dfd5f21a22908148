//! The ops `host.js` calls and the state they share: the invocations in flight, `waitUntil`
//! work, subrequests, and how a turn's CPU is charged. Requests come in through
//! [`super::incoming`] and responses go out through [`super::respond`]; ops are the only way
//! they cross between Rust and the isolate.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deno_core::{OpState, op2};
use tokio::sync::oneshot;

use super::incoming::{Queue, RequestParts};
use super::{Reply, Supervisor};
use crate::body::BodyError;
use crate::error::InvokeError;
use crate::limits::meter::{Meter, Subrequest, Usage};
use crate::limits::{LimitKind, Limits, TenantStats};
use crate::request_id::RequestId;

/// Per-isolate state the host ops share, kept in `OpState`.
pub(crate) struct HostState {
    pub(crate) tenant: Arc<str>,
    pub(crate) isolate_id: u64,
    pub(crate) queue: Rc<RefCell<Queue>>,
    pub(crate) supervisor: Arc<dyn Supervisor>,
    pub(crate) idle_timeout: Duration,
    pub(crate) env: serde_json::Value,
    pub(crate) next_id: u32,
    /// Keyed by the isolate's own sequential ids: a fast, non-keyed hash is enough.
    pub(crate) inflight: rustc_hash::FxHashMap<u32, Inflight>,
    pub(crate) ready: bool,
    /// The main module has evaluated (the host loop then looks for its handlers).
    pub(crate) evaluated: bool,
    pub(crate) stats: Arc<TenantStats>,
    /// Whether CPU and wall-clock limits are enforced (off only for benchmarks).
    pub(crate) enforce_limits: bool,
    /// How turns are charged and what they may use ([`crate::limits::meter`]).
    pub(crate) meter: Meter,
    /// The isolate's memory count, for what ops hold on its behalf.
    pub(crate) memory: Arc<crate::limits::memory::IsolateMemory>,
    /// The isolate's open WebSockets.
    pub(crate) sockets: Rc<super::websocket::Sockets>,
    /// The WebSocket behaviours the app's compatibility date turns on.
    pub(crate) websocket_compat: u32,
    /// The node granted the app private networks (`[outbound] allow_private`): outbound
    /// WebSockets may reach them, as its `fetch` may.
    pub(crate) allow_private: bool,
}

/// One invocation the script is working on: from dispatch until its response is complete and
/// its `waitUntil` promises have settled.
pub(crate) struct Inflight {
    pub(crate) request_id: RequestId,
    pub(crate) reply: Option<oneshot::Sender<Reply>>,
    pub(crate) body_tx: Option<super::respond::StreamOut>,
    /// The response (with its body) is complete.
    pub(crate) responded: bool,
    /// `waitUntil` promises not yet settled.
    pub(crate) wait_until: u32,
    /// What it has used, against its limits.
    pub(crate) usage: Usage,
    /// What the script has not taken of the request yet ([`super::incoming`]).
    pub(crate) request: RequestParts,
    /// The event, when it is not a request.
    pub(crate) event: Option<super::incoming::OtherEvent>,
}

impl HostState {
    pub(super) fn take_reply(&mut self, id: u32) -> Option<(RequestId, oneshot::Sender<Reply>)> {
        let entry = self.inflight.get_mut(&id)?;
        let reply = entry.reply.take()?;
        Some((entry.request_id, reply))
    }

    /// A fresh id for an invocation (or a socket's event): the next in sequence that is not
    /// in flight (ids wrap at [`super::incoming::ID_LIMIT`]).
    pub(crate) fn fresh_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = (self.next_id + 1) % super::incoming::ID_LIMIT;
            if !self.inflight.contains_key(&id) {
                return id;
            }
        }
    }

    /// The response of `id` is complete (or abandoned).
    pub(super) fn finish(&mut self, id: u32) {
        if let Some(entry) = self.inflight.get_mut(&id) {
            entry.responded = true;
            entry.body_tx = None;
            if entry.wait_until == 0 {
                self.inflight.remove(&id);
            }
        }
    }

    /// A turn begins: returns what it may use and starts counting who shares it.
    pub(crate) fn begin_turn(&mut self) -> (Duration, Option<Instant>) {
        self.meter
            .begin_turn(self.inflight.values().map(|e| &e.usage))
    }

    /// An invocation started within the current turn (see [`Meter::started_in_turn`]).
    pub(crate) fn started_in_turn(&mut self) {
        self.meter.started_in_turn();
    }

    /// Charges `used` CPU to the invocations in flight; returns the limit one of them broke.
    pub(crate) fn charge(&mut self, used: Duration) -> Option<LimitKind> {
        self.meter
            .charge(used, self.inflight.values_mut().map(|e| &mut e.usage))
    }

    /// What the next turn may use: CPU, and the earliest wall-clock deadline.
    pub(crate) fn turn_budget(&self) -> (Duration, Option<Instant>) {
        self.meter
            .turn_budget(self.inflight.values().map(|e| &e.usage))
    }
}

deno_core::extension!(
    edge_host,
    deps = [edge_web, edge_binding],
    ops = [
        op_edge_env,
        op_edge_ready,
        op_edge_evaluated,
        super::incoming::op_edge_wait_request,
        super::incoming::op_edge_take_request,
        super::incoming::op_edge_event,
        super::incoming::op_edge_event_body,
        super::incoming::op_edge_request_head,
        super::incoming::op_edge_request_cf,
        super::incoming::op_edge_request_body,
        super::incoming::op_edge_request_bytes,
        super::respond::op_edge_respond_text,
        super::respond::op_edge_respond_bytes,
        super::respond::op_edge_respond_stream,
        super::respond::op_edge_body_write,
        super::respond::op_edge_body_close,
        super::respond::op_edge_body_error,
        super::respond::op_edge_fail,
        op_edge_wait_until,
        op_edge_wait_until_done,
        op_edge_unhandled_rejection,
        op_edge_uncaught,
        op_edge_subrequest,
        super::websocket::op_edge_respond_websocket,
        super::websocket::op_edge_ws_compat,
        super::websocket::op_edge_ws_connect,
        super::websocket::op_edge_ws_refusal_body,
        super::websocket::op_edge_ws_next,
        super::websocket::op_edge_ws_text,
        super::websocket::op_edge_ws_binary_len,
        super::websocket::op_edge_ws_binary,
        super::websocket::op_edge_ws_closed,
        super::websocket::op_edge_ws_done,
        super::websocket::op_edge_ws_send_text,
        super::websocket::op_edge_ws_send_bytes,
        super::websocket::op_edge_ws_close,
        super::websocket::op_edge_ws_abort,
    ],
    esm_entry_point = "ext:edge_host/host.js",
    esm = [dir "js", "host.js", "events.js", "invocation.js", "websocket.js"],
    options = { host: Option<HostState> },
    state = |state, options| {
        if let Some(host) = options.host {
            state.put(host);
        }
    },
);

/// `env`: the app's `[vars]`.
#[op2]
#[serde]
fn op_edge_env(state: &mut OpState) -> serde_json::Value {
    state.borrow::<HostState>().env.clone()
}

/// The main module's top level has run: a failure from here on is about its handlers.
#[op2(fast)]
fn op_edge_evaluated(state: &mut OpState) {
    state.borrow_mut::<HostState>().evaluated = true;
}

/// The main module loaded and a handler was found.
#[op2(fast)]
fn op_edge_ready(state: &mut OpState, #[string] handlers: &str) {
    let host = state.borrow_mut::<HostState>();
    host.stats.set_handlers(
        handlers
            .split(',')
            .filter(|h| matches!(*h, "fetch" | "scheduled" | "queue"))
            .map(str::to_string),
    );
    host.ready = true;
    host.supervisor.loaded(host.isolate_id);
}

/// `ctx.waitUntil(promise)` was called for request `id`: it stays in flight (and keeps being
/// charged) until the promise settles.
#[op2(fast)]
fn op_edge_wait_until(state: &mut OpState, #[smi] id: u32) {
    if let Some(entry) = state.borrow_mut::<HostState>().inflight.get_mut(&id) {
        entry.wait_until += 1;
    }
}

/// A `waitUntil` promise settled; `error` is empty when it fulfilled.
#[op2(fast)]
fn op_edge_wait_until_done(state: &mut OpState, #[smi] id: u32, #[string] error: &str) {
    let host = state.borrow_mut::<HostState>();
    if let Some(entry) = host.inflight.get_mut(&id) {
        entry.wait_until = entry.wait_until.saturating_sub(1);
        if entry.responded && entry.wait_until == 0 {
            host.inflight.remove(&id);
        }
    }
    if !error.is_empty() {
        tracing::error!(target: "edge::script", tenant = &*host.tenant, "waitUntil promise rejected: {error}");
    }
}

/// A promise rejected with no handler: logged, and the isolate keeps serving.
#[op2(fast)]
fn op_edge_unhandled_rejection(state: &mut OpState, #[string] error: &str) {
    let host = state.borrow::<HostState>();
    tracing::error!(target: "edge::script", tenant = &*host.tenant, "unhandled promise rejection: {error}");
}

/// A timer callback, a microtask or an event listener threw (a listener's exception is
/// reported as an `error` event on the global scope first): logged, and the isolate keeps
/// serving.
#[op2(fast)]
fn op_edge_uncaught(state: &mut OpState, #[string] error: &str) {
    let host = state.borrow::<HostState>();
    tracing::error!(target: "edge::script", tenant = &*host.tenant, "uncaught exception in a timer, microtask or event listener: {error}");
}

/// Counts an outbound `fetch` of invocation `id` (the caller's async context). Returns false
/// when that exceeds the limit: the fetch is refused and the invocation answers `503
/// subrequest-limit` if it has not answered yet. A fetch whose context names no invocation in
/// flight (work left running after its response, or a context the script reset) counts
/// against the isolate's orphan allowance, also one invocation's limit: no context escapes
/// the count.
#[op2(fast)]
fn op_edge_subrequest(state: &mut OpState, id: u32) -> bool {
    let host = state.borrow_mut::<HostState>();
    let limit = host.meter.limits().subrequests;
    match host
        .meter
        .subrequest(host.inflight.get_mut(&id).map(|e| &mut e.usage))
    {
        Subrequest::Allowed => return true,
        Subrequest::OverOrphan { first } => {
            if first {
                tracing::warn!(
                    tenant = &*host.tenant,
                    limit,
                    "subrequest limit exceeded by work with no request in flight"
                );
            }
            return false;
        }
        Subrequest::OverInvocation => {}
    }
    let Some(entry) = host.inflight.get_mut(&id) else {
        return false;
    };
    let request_id = entry.request_id;
    let reply = entry.reply.take();
    let tenant = host.tenant.clone();
    host.stats.terminated(LimitKind::Subrequests);
    tracing::warn!(
        tenant = &*tenant,
        %request_id,
        used = limit + 1,
        limit,
        "subrequest limit exceeded"
    );
    if let Some(tx) = reply {
        let _ = tx.send(Err(limit_error(
            LimitKind::Subrequests,
            host.meter.limits(),
        )));
    }
    false
}

/// Stops every invocation past its wall-clock deadline at `now`, between turns (no script is
/// running): it answers `503 wall-limit` if it has not answered yet, a streamed body is cut,
/// and it leaves the isolate, which keeps serving the others. (A turn still running at the
/// deadline is terminated by the watchdog instead.) Returns how many were stopped.
pub(crate) fn expire_overdue(state: &mut OpState, now: Instant) -> usize {
    let host = state.borrow_mut::<HostState>();
    let wall = host.meter.limits().wall;
    let overdue: Vec<u32> = host
        .inflight
        .iter()
        .filter(|(_, e)| host.meter.overdue(&e.usage, now))
        .map(|(id, _)| *id)
        .collect();
    for id in &overdue {
        let Some(entry) = host.inflight.remove(id) else {
            continue;
        };
        host.stats.terminated(LimitKind::Wall);
        tracing::warn!(
            tenant = &*host.tenant,
            request_id = %entry.request_id,
            wall_limit_ms = wall.as_millis() as u64,
            "invocation stopped: wall-clock limit of {} ms exceeded",
            wall.as_millis()
        );
        if let Some(tx) = entry.reply {
            let _ = tx.send(Err(limit_error(LimitKind::Wall, host.meter.limits())));
        }
        if let Some(out) = entry.body_tx {
            out.cancel.notify_one();
        }
    }
    overdue.len()
}

/// The error an invocation that broke `kind` answers with.
pub(crate) fn limit_error(kind: LimitKind, limits: &Limits) -> InvokeError {
    let detail = match kind {
        LimitKind::Cpu => format!("CPU time limit of {} ms exceeded", limits.cpu.as_millis()),
        LimitKind::Memory => format!("memory limit of {} MiB exceeded", limits.memory_bytes >> 20),
        LimitKind::Wall => format!(
            "wall-clock limit of {} ms exceeded",
            limits.wall.as_millis()
        ),
        LimitKind::Subrequests => format!("subrequest limit of {} exceeded", limits.subrequests),
    };
    InvokeError::new(kind.error_code(), detail)
}

/// The request ids in flight and the most CPU any of them used, for the breach log.
pub(crate) fn inflight_summary(state: &OpState) -> (String, Duration) {
    let host = state.borrow::<HostState>();
    let ids: Vec<String> = host
        .inflight
        .values()
        .map(|e| e.request_id.to_string())
        .collect();
    let used = host
        .inflight
        .values()
        .map(|e| e.usage.cpu)
        .max()
        .unwrap_or_default();
    (ids.join(","), used)
}

/// Answers every request still waiting on an isolate that is going away.
pub(crate) fn abandon_inflight(state: &mut OpState, error: &InvokeError) {
    let host = state.borrow_mut::<HostState>();
    for (_, entry) in host.inflight.drain() {
        if let Some(tx) = entry.reply {
            let _ = tx.send(Err(error.clone()));
        }
        if let Some(out) = entry.body_tx {
            let _ = out.tx.try_send(Err(BodyError(error.message.clone())));
        }
    }
}
