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
use crate::limits::watchdog::Watched;
use crate::limits::{LimitKind, Limits, TenantStats};
use crate::request_id::RequestId;

/// CPU a turn may use while the app loads (evaluating its module). Generous, but an endless
/// loop at load is still stopped.
pub(crate) const IDLE_TURN_BUDGET: Duration = Duration::from_secs(2);

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
    pub(crate) limits: Limits,
    pub(crate) stats: Arc<TenantStats>,
    /// Whether CPU and wall-clock limits are enforced (off only for benchmarks).
    pub(crate) enforce_limits: bool,
    /// The main module has evaluated; the host loop is (about to be) taking requests.
    pub(crate) serving: bool,
    /// The isolate as the watchdog sees it: a turn's budget grows as invocations start in it.
    pub(crate) watched: Arc<Watched>,
    /// How the current event-loop turn's CPU is shared.
    pub(crate) turn: TurnShare,
    /// CPU used in turns that no invocation shared (timers or promises a handler left running
    /// after its response) since the last invocation started. Past one invocation's CPU limit,
    /// the isolate is stopped: such work is the tenant's too.
    pub(crate) orphan_cpu: Duration,
    /// Outbound fetches made by no invocation in flight (by work left running after a
    /// response, or by code that reset its async context) since the last invocation started;
    /// bounded by one invocation's subrequest limit.
    pub(crate) orphan_subrequests: u32,
}

/// Who shares the CPU of the current event-loop turn. CPU is read per turn, not per
/// invocation, so a turn's CPU is split evenly between every invocation that was in flight at
/// any point of it — including those that started and finished within the turn, which are no
/// longer in flight when it is charged.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TurnShare {
    /// Invocations in flight when the turn began, plus those started during it.
    sharers: u32,
    /// The turn began with nothing in flight, and its budget already holds one invocation's
    /// limit for the first request to start in it.
    reserved: bool,
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
    /// CPU time charged so far.
    pub(crate) cpu: Duration,
    /// When it was dispatched.
    pub(crate) started: Instant,
    /// Outbound fetches made.
    pub(crate) subrequests: u32,
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

    /// A turn begins: returns what it may use (see [`HostState::turn_budget`]) and starts
    /// counting who shares it.
    pub(crate) fn begin_turn(&mut self) -> (Duration, Option<Instant>) {
        self.turn = TurnShare {
            sharers: self.inflight.len() as u32,
            reserved: self.serving && self.inflight.is_empty(),
        };
        self.turn_budget()
    }

    /// An invocation started within the current turn: it shares the turn's CPU, and the turn
    /// may use one more invocation's limit (the first start in a turn that began idle uses the
    /// share already reserved for it).
    pub(crate) fn started_in_turn(&mut self) {
        self.turn.sharers += 1;
        self.orphan_cpu = Duration::ZERO;
        self.orphan_subrequests = 0;
        if self.turn.reserved {
            self.turn.reserved = false;
        } else {
            self.watched.extend_turn(self.limits.cpu);
        }
    }

    /// Charges `used` CPU, split evenly between everything that shared the turn, to the
    /// invocations still in flight, and returns the limit one of them broke.
    pub(crate) fn charge(&mut self, used: Duration) -> Option<LimitKind> {
        self.stats.add_cpu(used);
        if self.inflight.is_empty() {
            if self.serving && self.turn.sharers == 0 {
                // Work nobody asked for: charged to the isolate, bounded by one invocation's
                // limit, so a tenant gets no more CPU than its limit times the requests it
                // was sent.
                self.orphan_cpu += used;
                if self.orphan_cpu > self.limits.cpu {
                    return Some(LimitKind::Cpu);
                }
            }
            return None;
        }
        let sharers = self.turn.sharers.max(self.inflight.len() as u32);
        let share = used / sharers;
        let mut breach = None;
        for entry in self.inflight.values_mut() {
            entry.cpu += share;
            if entry.cpu > self.limits.cpu {
                breach = Some(LimitKind::Cpu);
            }
        }
        breach
    }

    /// What the next turn may use: the CPU the most constrained invocation has left (times the
    /// number sharing the turn), and the earliest wall-clock deadline. With nothing in flight,
    /// one invocation's budget (a request may start within the turn); while the app is still
    /// loading, [`IDLE_TURN_BUDGET`].
    pub(crate) fn turn_budget(&self) -> (Duration, Option<Instant>) {
        if !self.serving {
            return (IDLE_TURN_BUDGET, None);
        }
        if self.inflight.is_empty() {
            // A request may arrive and start within this very turn: hold the turn to one
            // invocation's budget.
            return (self.limits.cpu, None);
        }
        let n = self.inflight.len() as u32;
        let left = self
            .inflight
            .values()
            .map(|e| self.limits.cpu.saturating_sub(e.cpu))
            .min()
            .unwrap_or_default();
        let deadline = self
            .inflight
            .values()
            .map(|e| e.started + self.limits.wall)
            .min();
        (left.saturating_mul(n), deadline)
    }
}

deno_core::extension!(
    edge_host,
    deps = [edge_web, edge_kv],
    ops = [
        op_edge_env,
        op_edge_ready,
        super::incoming::op_edge_wait_request,
        super::incoming::op_edge_take_request,
        super::incoming::op_edge_event,
        super::incoming::op_edge_request_head,
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
        op_edge_subrequest,
    ],
    esm_entry_point = "ext:edge_host/host.js",
    esm = [dir "js", "host.js"],
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

/// The main module loaded and a handler was found.
#[op2(fast)]
fn op_edge_ready(state: &mut OpState) {
    let host = state.borrow_mut::<HostState>();
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

/// Counts an outbound `fetch` of invocation `id` (the caller's async context). Returns false
/// when that exceeds the limit: the fetch is refused and the invocation answers `503
/// subrequest-limit` if it has not answered yet. A fetch whose context names no invocation in
/// flight (work left running after its response, or a context the script reset) counts
/// against the isolate's orphan allowance, also one invocation's limit: no context escapes
/// the count.
#[op2(fast)]
fn op_edge_subrequest(state: &mut OpState, id: u32) -> bool {
    let host = state.borrow_mut::<HostState>();
    let limit = host.limits.subrequests;
    let Some(entry) = host.inflight.get_mut(&id) else {
        host.orphan_subrequests = host.orphan_subrequests.saturating_add(1);
        if host.orphan_subrequests <= limit {
            return true;
        }
        if host.orphan_subrequests == limit + 1 {
            tracing::warn!(
                tenant = &*host.tenant,
                limit,
                "subrequest limit exceeded by work with no request in flight"
            );
        }
        return false;
    };
    entry.subrequests += 1;
    if entry.subrequests <= limit {
        return true;
    }
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
        let _ = tx.send(Err(limit_error(LimitKind::Subrequests, &host.limits)));
    }
    false
}

/// Stops every invocation past its wall-clock deadline at `now`, between turns (no script is
/// running): it answers `503 wall-limit` if it has not answered yet, a streamed body is cut,
/// and it leaves the isolate, which keeps serving the others. (A turn still running at the
/// deadline is terminated by the watchdog instead.) Returns how many were stopped.
pub(crate) fn expire_overdue(state: &mut OpState, now: Instant) -> usize {
    let host = state.borrow_mut::<HostState>();
    let wall = host.limits.wall;
    let overdue: Vec<u32> = host
        .inflight
        .iter()
        .filter(|(_, e)| e.started + wall <= now)
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
            let _ = tx.send(Err(limit_error(LimitKind::Wall, &host.limits)));
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
        .map(|e| e.cpu)
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
