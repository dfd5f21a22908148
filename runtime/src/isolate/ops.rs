//! The ops `host.js` calls: take the next request, answer it, stream its body, track
//! `waitUntil` work. They are the only way requests and responses cross between Rust and the
//! isolate.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deno_core::{JsBuffer, OpState, op2};
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::incoming::{Queue, RequestParts};
use super::{Reply, Supervisor};
use crate::body::{BodyEnd, BodyError, ResponseBody};
use crate::error::{ErrorCode, InvokeError};
use crate::limits::watchdog::Watched;
use crate::limits::{LimitKind, Limits, TenantStats};
use crate::request_id::RequestId;

/// CPU a turn may use while the app loads (evaluating its module). Generous, but an endless
/// loop at load is still stopped.
pub(crate) const IDLE_TURN_BUDGET: Duration = Duration::from_secs(2);

/// How many response chunks may wait between the script and a slow client.
const BODY_CHANNEL_CHUNKS: usize = 8;

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
    pub(crate) body_tx: Option<StreamOut>,
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
}

/// The sending side of a streamed response.
pub(crate) struct StreamOut {
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
    /// Marks the body complete when the script closes it; dropped unmarked, it is cut.
    end: BodyEnd,
    /// Wakes a write waiting on a slow client when the invocation is stopped.
    cancel: Rc<tokio::sync::Notify>,
}

impl HostState {
    fn take_reply(&mut self, id: u32) -> Option<(RequestId, oneshot::Sender<Reply>)> {
        let entry = self.inflight.get_mut(&id)?;
        let reply = entry.reply.take()?;
        Some((entry.request_id, reply))
    }

    /// The response of `id` is complete (or abandoned).
    fn finish(&mut self, id: u32) {
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
        super::incoming::op_edge_request_head,
        super::incoming::op_edge_request_body,
        super::incoming::op_edge_request_bytes,
        op_edge_respond_text,
        op_edge_respond_bytes,
        op_edge_respond_stream,
        op_edge_body_write,
        op_edge_body_close,
        op_edge_body_error,
        op_edge_fail,
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

/// Most response headers a script may send (hyper's header map holds at most 32,768).
pub(crate) const MAX_RESPONSE_HEADERS: usize = 4_096;

/// Most bytes of response header names and values a script may send, as Workers allows.
pub(crate) const MAX_RESPONSE_HEADER_BYTES: usize = 128 << 10;

/// The response head the front door will send, or why it cannot: a bad status, a bad header,
/// or more headers than [`MAX_RESPONSE_HEADERS`] / [`MAX_RESPONSE_HEADER_BYTES`]. Never panics,
/// whatever the script passed.
fn build_head(
    status: u32,
    headers: &[u8],
    body: ResponseBody,
) -> Result<http::Response<ResponseBody>, String> {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("invalid response status {status}"))?;
    let mut res = http::Response::new(body);
    *res.status_mut() = status;
    let map = res.headers_mut();
    let mut bytes = 0usize;
    for (count, (name, value)) in super::header_block::split(headers).enumerate() {
        bytes += name.len() + value.len();
        if count >= MAX_RESPONSE_HEADERS || bytes > MAX_RESPONSE_HEADER_BYTES {
            return Err(format!(
                "the response has more than {MAX_RESPONSE_HEADERS} headers or {} KiB of header names and values",
                MAX_RESPONSE_HEADER_BYTES >> 10
            ));
        }
        let name = HeaderName::from_bytes(name).map_err(|_| {
            format!(
                "invalid response header name {:?}",
                String::from_utf8_lossy(name)
            )
        })?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| format!("invalid value for response header {name}"))?;
        map.try_append(name, value)
            .map_err(|_| "the response has too many headers".to_string())?;
    }
    Ok(res)
}

/// The bytes of a header block that JS passed as a string. Header strings hold only characters
/// up to U+00FF (they are `ByteString`s), one byte each; the op receives them as UTF-8, which
/// is the same bytes when all are ASCII (almost always) and is mapped back otherwise. Taking a
/// string costs the quickjs backend about 2,600 instructions where a `ByteString` costs
/// about 7,000 (callgrind); borrowed, it needs no allocation when ASCII.
fn latin1(block: &str) -> std::borrow::Cow<'_, [u8]> {
    if block.is_ascii() {
        return std::borrow::Cow::Borrowed(block.as_bytes());
    }
    block
        .chars()
        .map(|c| u32::from(c).min(0xFF) as u8)
        .collect()
}

fn send_reply(state: &mut OpState, id: u32, reply: Reply) {
    let host = state.borrow_mut::<HostState>();
    if let Some((_, tx)) = host.take_reply(id) {
        let _ = tx.send(reply);
    }
}

fn fail(state: &mut OpState, id: u32, message: &str) {
    script_error(
        state,
        id,
        "uncaught exception in fetch handler",
        message,
        "the app's fetch handler threw an exception",
    );
}

/// The script's response cannot be sent as it is (see [`build_head`]): logged with the reason,
/// answered `500 script-error`.
fn refuse(state: &mut OpState, id: u32, reason: &str) {
    script_error(
        state,
        id,
        "the app's response cannot be sent",
        reason,
        "the app's response cannot be sent",
    );
}

/// Answers request `id` `500 script-error` with the client-safe `answer`, and logs `what` with
/// the `detail` (a stack, a reason) that only the log gets.
fn script_error(state: &mut OpState, id: u32, what: &str, detail: &str, answer: &'static str) {
    let host = state.borrow_mut::<HostState>();
    let tenant = host.tenant.clone();
    if let Some((request_id, tx)) = host.take_reply(id) {
        tracing::error!(
            target: "edge::script",
            tenant = &*tenant,
            %request_id,
            "{what}: {detail}"
        );
        let _ = tx.send(Err(InvokeError::new(ErrorCode::ScriptError, answer)));
    }
    host.finish(id);
}

fn respond_full(state: &mut OpState, id: u32, status: u32, headers: &[u8], body: ResponseBody) {
    match build_head(status, headers, body) {
        Ok(res) => {
            send_reply(state, id, Ok(res));
            state.borrow_mut::<HostState>().finish(id);
        }
        Err(msg) => refuse(state, id, &msg),
    }
}

/// Answers request `id` with a text body known in full (or none: an empty string).
#[op2(fast)]
fn op_edge_respond_text(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
    #[string] body: &str,
) {
    let body = ResponseBody::from(Bytes::copy_from_slice(body.as_bytes()));
    respond_full(state, id, status, &latin1(headers), body);
}

/// Answers request `id` with a byte body known in full.
#[op2]
fn op_edge_respond_bytes(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
    #[buffer] body: JsBuffer,
) {
    let body = ResponseBody::from(Bytes::copy_from_slice(&body));
    respond_full(state, id, status, &latin1(headers), body);
}

/// Answers request `id` with a body that the script will stream with `op_edge_body_write`.
#[op2(fast)]
fn op_edge_respond_stream(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
) {
    let (tx, end, body) = crate::body::body_channel(BODY_CHANNEL_CHUNKS);
    match build_head(status, &latin1(headers), body) {
        Ok(res) => {
            if let Some(entry) = state.borrow_mut::<HostState>().inflight.get_mut(&id) {
                entry.body_tx = Some(StreamOut {
                    tx,
                    end,
                    cancel: Rc::default(),
                });
            }
            send_reply(state, id, Ok(res));
        }
        Err(msg) => refuse(state, id, &msg),
    }
}

/// Sends one chunk of a streamed response. Resolves to false when the client went away.
#[op2]
async fn op_edge_body_write(
    state: Rc<RefCell<OpState>>,
    #[smi] id: u32,
    #[buffer] chunk: JsBuffer,
) -> bool {
    let (tx, cancel) = {
        let s = state.borrow();
        match s
            .borrow::<HostState>()
            .inflight
            .get(&id)
            .and_then(|e| e.body_tx.as_ref())
        {
            Some(out) => (out.tx.clone(), out.cancel.clone()),
            None => return false,
        }
    };
    // A client that does not read holds the write until the invocation is stopped.
    let ok = tokio::select! {
        sent = tx.send(Ok(Bytes::copy_from_slice(&chunk))) => sent.is_ok(),
        () = cancel.notified() => false,
    };
    if !ok {
        state.borrow_mut().borrow_mut::<HostState>().finish(id);
    }
    ok
}

/// Ends a streamed response.
#[op2(fast)]
fn op_edge_body_close(state: &mut OpState, #[smi] id: u32) {
    let host = state.borrow_mut::<HostState>();
    if let Some(out) = host.inflight.get(&id).and_then(|e| e.body_tx.as_ref()) {
        out.end.complete();
    }
    host.finish(id);
}

/// Aborts a streamed response: the client sees the connection cut, not a clean end.
#[op2(fast)]
fn op_edge_body_error(state: &mut OpState, #[smi] id: u32, #[string] message: &str) {
    let host = state.borrow_mut::<HostState>();
    if let Some(entry) = host.inflight.get_mut(&id) {
        tracing::error!(
            target: "edge::script",
            tenant = &*host.tenant,
            request_id = %entry.request_id,
            "response body stream failed: {message}"
        );
        if let Some(out) = entry.body_tx.take() {
            // If the client is not reading, the channel is full; dropped unmarked, the body
            // is cut all the same.
            let _ = out.tx.try_send(Err(BodyError(message.to_string())));
        }
    }
    host.finish(id);
}

/// The handler threw or returned something that is not a Response.
#[op2(fast)]
fn op_edge_fail(state: &mut OpState, #[smi] id: u32, #[string] message: &str) {
    fail(state, id, message);
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

/// Counts an outbound `fetch` of invocation `id`. Returns false when that exceeds the limit:
/// the fetch is refused and the invocation answers `503 subrequest-limit` if it has not
/// answered yet.
#[op2(fast)]
fn op_edge_subrequest(state: &mut OpState, #[smi] id: u32) -> bool {
    let host = state.borrow_mut::<HostState>();
    let limit = host.limits.subrequests;
    let Some(entry) = host.inflight.get_mut(&id) else {
        return true;
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
