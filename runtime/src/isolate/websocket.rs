//! WebSockets in an isolate: the ops `websocket.js` drives a connection with, and what the
//! isolate keeps of its open sockets.
//!
//! A fetch handler answers an upgrade request with a `101` and the client end of a
//! `WebSocketPair` ([`op_edge_respond_websocket`]): the answer goes out, the invocation ends,
//! and the connection becomes a resource of the isolate (a [`crate::websocket::Socket`] on its
//! thread). The script reads it one message at a time ([`op_edge_ws_next`]); each message is
//! an event of its own, in flight from its arrival until its listeners have run, charged CPU
//! and held to the wall-clock limit as an invocation is (Workers' model without hibernation:
//! CPU per event). Sends are queued and written in order by a task of the socket's; the queue
//! is bounded and counted against the isolate's memory, as a message read and not yet taken is.
//!
//! Open sockets keep their isolate from retiring when idle and count against the app's
//! `limits.websockets`; an isolate retired (its app replaced or removed) closes them with
//! `1001`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::{OpState, Resource, op2};
use deno_error::JsErrorBox;
use fastwebsockets::Role;
use http::{HeaderValue, header};
use tokio::sync::Notify;

use super::ops::{HostState, Inflight};
use super::respond::{build_head, refuse, send_reply};
use crate::body::ResponseBody;
use crate::error::{ErrorCode, InvokeError};
use crate::limits::TenantStats;
use crate::limits::memory::IsolateMemory;
use crate::request_id::RequestId;
use crate::websocket::socket::BoxStream;
use crate::websocket::{MAX_MESSAGE_BYTES, Received, Socket};

/// Bytes of sends one socket may have waiting for a slow peer; a send past it throws.
const MAX_QUEUED_BYTES: usize = 32 << 20;

/// The code and reason sockets are closed with when their isolate retires.
const GOING_AWAY: (u16, &str) = (1001, "the app is restarting");

/// `binaryType` starts as "blob" (compatibility date 2026-03-17 or later).
const COMPAT_BLOB: u32 = 1;
/// A close from the other end is answered at once (compatibility date 2026-04-07 or later).
const COMPAT_AUTO_REPLY: u32 = 2;

/// The WebSocket behaviours an app's compatibility date (`YYYY-MM-DD`) turns on, as bits for
/// `websocket.js` (the dates are Workers', checked under `wrangler dev`). No date: neither.
pub(crate) fn compat_bits(date: Option<&str>) -> u32 {
    let date = date.unwrap_or("");
    let mut bits = 0;
    if date >= "2026-03-17" {
        bits |= COMPAT_BLOB;
    }
    if date >= "2026-04-07" {
        bits |= COMPAT_AUTO_REPLY;
    }
    bits
}

/// The app's WebSocket behaviours ([`compat_bits`]).
#[op2(fast)]
#[smi]
pub(super) fn op_edge_ws_compat(state: &mut OpState) -> u32 {
    state.borrow::<HostState>().websocket_compat
}

/// What `op_edge_ws_next` resolves to, in its low two bits (the event's id is above them).
const KIND_TEXT: u32 = 0;
const KIND_BINARY: u32 = 1;
const KIND_CLOSE: u32 = 2;
const KIND_GONE: u32 = 3;

/// The isolate's open sockets.
#[derive(Default)]
pub(crate) struct Sockets {
    open: Cell<u32>,
    going: Cell<bool>,
    notify: Notify,
}

impl Sockets {
    /// Whether none is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.get() == 0
    }

    /// The isolate is retiring: every socket closes.
    pub(crate) fn go_away(&self) {
        if !self.going.replace(true) {
            self.notify.notify_waiters();
        }
    }

    async fn going_away(&self) {
        while !self.going.get() {
            self.notify.notified().await;
        }
    }
}

/// One open socket's place in the isolate's and the app's counts, until dropped.
struct Counted {
    sockets: Rc<Sockets>,
    stats: Arc<TenantStats>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.sockets
            .open
            .set(self.sockets.open.get().saturating_sub(1));
        self.stats.closed_websocket();
    }
}

/// A send waiting to be written.
enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
}

/// A socket as the isolate holds it.
struct WsResource {
    socket: Socket,
    /// The request that opened it: its messages are logged under its id.
    request_id: RequestId,
    /// The message read last, until the script takes it.
    parked: RefCell<Option<Received>>,
    /// Sends not yet written, in order.
    out: RefCell<VecDeque<Out>>,
    /// Their bytes (counted against the isolate's memory).
    queued: Cell<usize>,
    /// The task that writes them is running.
    writing: Cell<bool>,
    /// The script let go of the socket (closed its resource).
    cancelled: Cell<bool>,
    /// ... and wants the connection dropped without a close frame.
    aborted: Cell<bool>,
    cancel: Notify,
    memory: Arc<IsolateMemory>,
    _count: Counted,
    /// The connection's place under the front door's caps.
    _hold: Option<Box<dyn Send + Sync>>,
}

impl Resource for WsResource {
    fn name(&self) -> Cow<'_, str> {
        "edgeWebSocket".into()
    }

    fn close(self: Rc<Self>) {
        self.cancelled.set(true);
        self.cancel.notify_waiters();
    }
}

impl Drop for WsResource {
    fn drop(&mut self) {
        self.memory
            .release(self.queued.get() + parked_len(&self.parked.borrow()));
    }
}

impl WsResource {
    async fn cancelled(&self) {
        while !self.cancelled.get() {
            self.cancel.notified().await;
        }
    }

    /// Queues `out` (`len` bytes) and starts the writer if it is not running.
    fn queue(self: &Rc<Self>, out: Out, len: usize) -> Result<(), JsErrorBox> {
        if self.queued.get() + len > MAX_QUEUED_BYTES || !self.memory.reserve(len) {
            return Err(JsErrorBox::generic(format!(
                "WebSocket send() failed: {} MiB of messages are already waiting for the peer to read them",
                self.queued.get() >> 20
            )));
        }
        self.queued.set(self.queued.get() + len);
        self.out.borrow_mut().push_back(out);
        if !self.writing.replace(true) {
            deno_core::unsync::spawn(write_queued(self.clone()));
        }
        Ok(())
    }
}

/// Writes a socket's queued sends in order until the queue is empty. A send to a socket that
/// is closed or gone is dropped, as Workers ignores it.
async fn write_queued(res: Rc<WsResource>) {
    loop {
        let next = res.out.borrow_mut().pop_front();
        let Some(out) = next else { break };
        let (len, result) = match out {
            Out::Text(text) => (text.len(), res.socket.send_text(text).await),
            Out::Binary(bytes) => (bytes.len(), res.socket.send_binary(bytes).await),
            Out::Close(code, reason) => (0, res.socket.close(code, &reason).await),
        };
        res.queued.set(res.queued.get().saturating_sub(len));
        res.memory.release(len);
        if let Err(e) = result {
            tracing::debug!(request_id = %res.request_id, "WebSocket send dropped: {e}");
        }
    }
    res.writing.set(false);
}

fn parked_len(parked: &Option<Received>) -> usize {
    match parked {
        Some(Received::Text(t)) => t.len(),
        Some(Received::Binary(b)) => b.len(),
        _ => 0,
    }
}

/// Answers request `id` with a `101` that turns its connection into a WebSocket, with the
/// script's `headers` (a header block; `Sec-WebSocket-Protocol`, say). Returns the socket's
/// resource id, or -1 when the request cannot be answered so (it did not ask for an upgrade,
/// or the app has as many sockets open as it may): the request is then answered with an error
/// and the script's end of the pair is closed.
#[op2(fast)]
#[smi]
pub(super) fn op_edge_respond_websocket(
    state: &mut OpState,
    #[smi] id: u32,
    #[string] headers: &str,
) -> i32 {
    let host = state.borrow_mut::<HostState>();
    let Some(entry) = host.inflight.get_mut(&id) else {
        return -1;
    };
    if entry.reply.is_none() {
        return -1;
    }
    let Some(upgrade) = entry.request.upgrade.take() else {
        refuse(
            state,
            id,
            "the fetch handler returned a WebSocket in a response to a request that did not ask for one (an HTTP/1.1 GET with \"Upgrade: websocket\" and a valid handshake)",
        );
        return -1;
    };
    let request_id = entry.request_id;
    let limit = host.meter.limits().websockets;
    if !host.stats.open_websocket(limit) {
        tracing::warn!(tenant = &*host.tenant, %request_id, limit, "WebSocket refused: the app has as many open as limits.websockets allows");
        if let Some((_, tx)) = host.take_reply(id) {
            let _ = tx.send(Err(InvokeError::new(
                ErrorCode::Overloaded,
                format!(
                    "the app has {limit} WebSockets open, as many as its limits.websockets allows"
                ),
            )));
        }
        host.finish(id);
        return -1;
    }
    let count = Counted {
        sockets: host.sockets.clone(),
        stats: host.stats.clone(),
    };
    let memory = host.memory.clone();
    let auto_reply = host.websocket_compat & COMPAT_AUTO_REPLY != 0;
    let mut res = match build_head(101, headers.as_bytes(), ResponseBody::empty()) {
        Ok(res) => res,
        Err(msg) => {
            drop(count);
            refuse(state, id, &msg);
            return -1;
        }
    };
    let h = res.headers_mut();
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::TRANSFER_ENCODING);
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, upgrade.accept);
    let on = upgrade.on;
    let opening = Box::pin(async move {
        let upgraded = on.await.map_err(std::io::Error::other)?;
        Ok(Box::new(hyper_util::rt::TokioIo::new(upgraded)) as BoxStream)
    });
    {
        let sockets = &state.borrow::<HostState>().sockets;
        sockets.open.set(sockets.open.get() + 1);
    }
    let rid = state.resource_table.add(WsResource {
        socket: Socket::new(Role::Server, auto_reply, opening),
        request_id,
        parked: RefCell::default(),
        out: RefCell::default(),
        queued: Cell::new(0),
        writing: Cell::new(false),
        cancelled: Cell::new(false),
        aborted: Cell::new(false),
        cancel: Notify::new(),
        memory,
        _count: count,
        _hold: Some(upgrade.hold),
    });
    send_reply(state, id, Ok(res));
    state.borrow_mut::<HostState>().finish(id);
    rid as i32
}

/// What [`op_edge_ws_connect`] answers: the socket's resource id, or -1 and the server's
/// refusal (its body parked as resource `body`, taken with [`op_edge_ws_refusal_body`]).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connected {
    rid: i32,
    status: u16,
    headers: Vec<(String, String)>,
    body: u32,
    body_len: u32,
}

/// A refusal's body, until the script takes it.
struct RefusalBody(RefCell<Vec<u8>>);

impl Resource for RefusalBody {
    fn name(&self) -> Cow<'_, str> {
        "edgeWebSocketRefusal".into()
    }
}

/// Opens an outbound WebSocket to `url` with the script's `headers` for `invocation` (a
/// `fetch` with `Upgrade: websocket`, counted as a subrequest by the caller): where the app's
/// `fetch` may go, one more socket against `limits.websockets`.
#[op2]
#[serde]
pub(super) async fn op_edge_ws_connect(
    state: Rc<RefCell<OpState>>,
    #[smi] invocation: u32,
    #[string] url: String,
    #[serde] headers: Vec<(String, String)>,
) -> Result<Connected, JsErrorBox> {
    let (count, memory, allow_private, auto_reply, request_id) = {
        let s = state.borrow();
        let host = s.borrow::<HostState>();
        let limit = host.meter.limits().websockets;
        if !host.stats.open_websocket(limit) {
            return Err(JsErrorBox::generic(format!(
                "the app has {limit} WebSockets open, as many as its limits.websockets allows"
            )));
        }
        let count = Counted {
            sockets: host.sockets.clone(),
            stats: host.stats.clone(),
        };
        host.sockets.open.set(host.sockets.open.get() + 1);
        (
            count,
            host.memory.clone(),
            host.allow_private,
            host.websocket_compat & COMPAT_AUTO_REPLY != 0,
            host.inflight
                .get(&invocation)
                .map_or(RequestId::new(0, 0), |e| e.request_id),
        )
    };
    let answer = crate::websocket::connect::connect(&url, &headers, allow_private, auto_reply)
        .await
        .map_err(JsErrorBox::type_error)?;
    let mut s = state.borrow_mut();
    match answer {
        crate::websocket::connect::Answer::Upgraded(socket, headers) => {
            let rid = s.resource_table.add(WsResource {
                socket: *socket,
                request_id,
                parked: RefCell::default(),
                out: RefCell::default(),
                queued: Cell::new(0),
                writing: Cell::new(false),
                cancelled: Cell::new(false),
                aborted: Cell::new(false),
                cancel: Notify::new(),
                memory,
                _count: count,
                _hold: None,
            });
            Ok(Connected {
                rid: rid as i32,
                status: 101,
                headers,
                body: 0,
                body_len: 0,
            })
        }
        crate::websocket::connect::Answer::Refused {
            status,
            headers,
            body,
        } => {
            drop(count);
            let body_len = body.len() as u32;
            let body = s.resource_table.add(RefusalBody(RefCell::new(body)));
            Ok(Connected {
                rid: -1,
                status,
                headers,
                body,
                body_len,
            })
        }
    }
}

/// Copies a refusal's body (see [`op_edge_ws_connect`]) into `into`, of its length, and lets
/// it go.
#[op2(fast)]
pub(super) fn op_edge_ws_refusal_body(
    state: &mut OpState,
    #[smi] rid: u32,
    #[buffer] into: &mut [u8],
) {
    if let Ok(body) = state.resource_table.take::<RefusalBody>(rid) {
        let bytes = body.0.borrow();
        if bytes.len() == into.len() {
            into.copy_from_slice(&bytes);
        }
    }
}

/// Waits for socket `rid`'s next message, close or failure, and starts it as an event in
/// flight: resolves to its kind (low two bits: text, binary, a clean close, a failure) and
/// the event's id (above them). The script takes what arrived with [`op_edge_ws_text`],
/// [`op_edge_ws_binary`] or [`op_edge_ws_closed`], runs its listeners with the event's id as
/// their async context, and ends the event with [`op_edge_ws_done`].
#[op2]
pub(super) async fn op_edge_ws_next(state: Rc<RefCell<OpState>>, #[smi] rid: u32) -> u32 {
    let (res, sockets) = {
        let s = state.borrow();
        (
            s.resource_table.get::<WsResource>(rid).ok(),
            s.borrow::<HostState>().sockets.clone(),
        )
    };
    let Some(res) = res else {
        // Still an event of its own: the script ends it with `op_edge_ws_done` as any other.
        let id = state
            .borrow_mut()
            .borrow_mut::<HostState>()
            .start_event(RequestId::new(0, 0));
        return (id << 2) | KIND_GONE;
    };
    let stop = async {
        tokio::select! {
            () = sockets.going_away() => Some(GOING_AWAY),
            () = res.cancelled() => (!res.aborted.get()).then_some(GOING_AWAY),
        }
    };
    let mut got = Some(res.socket.next(stop).await);
    // A message waits off the isolate's heap until the script takes it: counted against its
    // memory, and one that does not fit ends the socket as too big.
    let len = parked_len(&got);
    if len > 0 && !res.memory.reserve(len) {
        got = Some(Received::Gone {
            code: 1009,
            reason: String::new(),
            error: Some(format!(
                "a message of {len} bytes does not fit in the isolate's memory limit"
            )),
        });
        let _ = res.queue(Out::Close(1009, String::new()), 0);
    }
    let got = got.unwrap_or(Received::Text(String::new()));
    let mut s = state.borrow_mut();
    let host = s.borrow_mut::<HostState>();
    let kind = match &got {
        Received::Text(_) => KIND_TEXT,
        Received::Binary(_) => KIND_BINARY,
        Received::Close { .. } => KIND_CLOSE,
        Received::Gone { .. } => KIND_GONE,
    };
    let id = host.start_event(res.request_id);
    *res.parked.borrow_mut() = Some(got);
    (id << 2) | kind
}

/// The text message socket `rid` read last (taken: empty after).
#[op2]
#[string]
pub(super) fn op_edge_ws_text(state: &mut OpState, #[smi] rid: u32) -> String {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return String::new();
    };
    let parked = res.parked.borrow_mut().take();
    match parked {
        Some(Received::Text(text)) => {
            res.memory.release(text.len());
            text
        }
        other => {
            *res.parked.borrow_mut() = other;
            String::new()
        }
    }
}

/// The length of the binary message socket `rid` read last.
#[op2(fast)]
#[smi]
pub(super) fn op_edge_ws_binary_len(state: &mut OpState, #[smi] rid: u32) -> u32 {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return 0;
    };
    match &*res.parked.borrow() {
        Some(Received::Binary(bytes)) => bytes.len() as u32,
        _ => 0,
    }
}

/// Copies the binary message socket `rid` read last into `into` (of its length, allocated
/// by the script, so the isolate's memory count has it) and lets it go.
#[op2(fast)]
pub(super) fn op_edge_ws_binary(state: &mut OpState, #[smi] rid: u32, #[buffer] into: &mut [u8]) {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return;
    };
    let parked = res.parked.borrow_mut().take();
    if let Some(Received::Binary(bytes)) = parked {
        res.memory.release(bytes.len());
        if bytes.len() == into.len() {
            into.copy_from_slice(&bytes);
        }
    }
}

/// How socket `rid` ended, once [`op_edge_ws_next`] said it did: `[code, reason, error]`
/// (`error` empty for a clean close).
#[op2]
#[serde]
pub(super) fn op_edge_ws_closed(state: &mut OpState, #[smi] rid: u32) -> (u16, String, String) {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return (1006, String::new(), String::new());
    };
    let parked = res.parked.borrow_mut().take();
    match parked {
        Some(Received::Close { code, reason }) => (code, reason, String::new()),
        Some(Received::Gone {
            code,
            reason,
            error,
        }) => (code, reason, error.unwrap_or_default()),
        _ => (1006, String::new(), String::new()),
    }
}

/// Drops socket `rid`'s connection without a close frame (a listener threw): the client
/// sees it cut (1006), as on Workers. The script closes the resource after.
#[op2(fast)]
pub(super) fn op_edge_ws_abort(state: &mut OpState, #[smi] rid: u32) {
    if let Ok(res) = state.resource_table.get::<WsResource>(rid) {
        res.aborted.set(true);
        res.out.borrow_mut().clear();
        res.socket.abort();
    }
}

/// A socket event's listeners have run: it is no longer in flight.
#[op2(fast)]
pub(super) fn op_edge_ws_done(state: &mut OpState, #[smi] id: u32) {
    state.borrow_mut::<HostState>().finish(id);
}

fn resource(state: &OpState, rid: u32) -> Result<Rc<WsResource>, JsErrorBox> {
    state
        .resource_table
        .get::<WsResource>(rid)
        .map_err(|_| JsErrorBox::type_error("the WebSocket is closed"))
}

fn check_size(len: usize) -> Result<(), JsErrorBox> {
    if len > MAX_MESSAGE_BYTES {
        return Err(JsErrorBox::range_error(format!(
            "WebSocket send() failed: the message is {len} bytes, more than the {} MiB a WebSocket message may be",
            MAX_MESSAGE_BYTES >> 20
        )));
    }
    Ok(())
}

/// Queues a text message on socket `rid`.
#[op2(fast)]
pub(super) fn op_edge_ws_send_text(
    state: &mut OpState,
    #[smi] rid: u32,
    #[string] text: String,
) -> Result<(), JsErrorBox> {
    check_size(text.len())?;
    let len = text.len();
    resource(state, rid)?.queue(Out::Text(text), len)
}

/// Queues a binary message on socket `rid` (copied: the script may change its buffer after).
#[op2(fast)]
pub(super) fn op_edge_ws_send_binary(
    state: &mut OpState,
    #[smi] rid: u32,
    #[buffer] bytes: &[u8],
) -> Result<(), JsErrorBox> {
    check_size(bytes.len())?;
    resource(state, rid)?.queue(Out::Binary(bytes.to_vec()), bytes.len())
}

/// Queues a close frame on socket `rid`, after the sends before it (`code` 0: none). The
/// script has checked the code and reason; they are checked again here.
#[op2(fast)]
pub(super) fn op_edge_ws_close(
    state: &mut OpState,
    #[smi] rid: u32,
    #[smi] code: u32,
    #[string] reason: String,
) -> Result<(), JsErrorBox> {
    let code = u16::try_from(code).unwrap_or(0);
    if code != 0 && !crate::websocket::is_sendable_close_code(code) {
        return Err(JsErrorBox::type_error(format!(
            "Invalid WebSocket close code: {code}."
        )));
    }
    resource(state, rid)?.queue(Out::Close(code, reason), 0)
}

impl HostState {
    /// Starts an event of a socket opened by `request_id` (a message, or its end) as an
    /// invocation in flight; returns its id.
    fn start_event(&mut self, request_id: RequestId) -> u32 {
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % super::incoming::ID_LIMIT;
        self.started_in_turn();
        self.inflight.insert(
            id,
            Inflight {
                request_id,
                reply: None,
                body_tx: None,
                responded: false,
                wait_until: 0,
                usage: crate::limits::meter::Usage::starting(),
                request: super::incoming::RequestParts::none(),
                event: None,
            },
        );
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_follow_the_compatibility_date() {
        assert_eq!(compat_bits(None), 0);
        assert_eq!(compat_bits(Some("2025-01-01")), 0);
        assert_eq!(compat_bits(Some("2026-03-16")), 0);
        assert_eq!(compat_bits(Some("2026-03-17")), COMPAT_BLOB);
        assert_eq!(compat_bits(Some("2026-04-06")), COMPAT_BLOB);
        assert_eq!(
            compat_bits(Some("2026-04-07")),
            COMPAT_BLOB | COMPAT_AUTO_REPLY
        );
    }
}
