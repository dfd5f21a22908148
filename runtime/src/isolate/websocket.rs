//! WebSockets in an isolate: the ops `websocket.js` drives a connection with, and what the
//! isolate keeps of its open sockets.
//!
//! A fetch handler answers an upgrade request with a `101` and the client end of a
//! `WebSocketPair` ([`op_edge_respond_websocket`]): the answer goes out, the invocation ends,
//! and the connection becomes a resource of the isolate (a [`crate::websocket::Socket`], whose
//! own tasks read and write it on the isolate's thread). The script takes one message at a
//! time ([`op_edge_ws_next`]); each is an event of its own, in flight from its arrival until
//! its listeners have run, charged CPU and held to the wall-clock limit as an invocation is
//! (Workers' model without hibernation: CPU per event). Messages waiting for the script and
//! sends waiting for the peer are counted against the isolate's memory.
//!
//! Open sockets keep their isolate from retiring when idle and count against the app's
//! `limits.websockets`, until their connection is over (whether or not the script still holds
//! them); an isolate retired (its app replaced or removed) closes them with `1001`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use deno_core::{OpState, Resource, op2};
use deno_error::JsErrorBox;
use http::{HeaderValue, header};
use tokio::sync::Notify;

use super::ops::{HostState, Inflight};
use super::respond::{build_head, refuse, send_reply};
use crate::body::ResponseBody;
use crate::error::{ErrorCode, InvokeError};
use crate::limits::TenantStats;
use crate::request_id::RequestId;
use crate::websocket::socket::{BoxStream, Charge, SendError};
use crate::websocket::{MAX_MESSAGE_BYTES, Received, Role, Socket};

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
    /// Connections not yet over (counted from the socket's tasks, on this thread).
    open: Arc<AtomicU32>,
    going: Cell<bool>,
    notify: Notify,
}

impl Sockets {
    /// Whether none is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
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

/// One socket's place in the isolate's and the app's counts, from when it is counted until
/// its connection is over.
struct Counted {
    open: Arc<AtomicU32>,
    stats: Arc<TenantStats>,
}

impl Counted {
    /// Counts one more socket for the app of `host`, unless it has as many as it may.
    fn new(host: &HostState) -> Option<Self> {
        if !host.stats.open_websocket(host.meter.limits().websockets) {
            return None;
        }
        host.sockets.open.fetch_add(1, Ordering::AcqRel);
        Some(Self {
            open: host.sockets.open.clone(),
            stats: host.stats.clone(),
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.stats.closed_websocket();
    }
}

/// A socket as the isolate holds it.
struct WsResource {
    socket: Socket,
    /// The request that opened it: its events are logged under its id.
    request_id: RequestId,
    /// What `op_edge_ws_next` took last, until the script takes it.
    parked: RefCell<Option<(Received, Charge)>>,
    /// The script let go of the socket (closed its resource).
    cancelled: Cell<bool>,
    cancel: Notify,
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

impl WsResource {
    fn new(socket: Socket, request_id: RequestId) -> Self {
        Self {
            socket,
            request_id,
            parked: RefCell::default(),
            cancelled: Cell::new(false),
            cancel: Notify::new(),
        }
    }

    async fn cancelled(&self) {
        while !self.cancelled.get() {
            self.cancel.notified().await;
        }
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
    let mut res = match build_head(101, headers.as_bytes(), ResponseBody::empty()) {
        Ok(res) => res,
        Err(msg) => {
            refuse(state, id, &msg);
            return -1;
        }
    };
    let Some(count) = Counted::new(host) else {
        let limit = host.meter.limits().websockets;
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
    };
    let memory = host.memory.clone();
    let auto_reply = host.websocket_compat & COMPAT_AUTO_REPLY != 0;
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
    let keep = Box::new((count, upgrade.hold));
    let socket = Socket::new(Role::Server, auto_reply, opening, memory, keep);
    let rid = state
        .resource_table
        .add(WsResource::new(socket, request_id));
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
struct RefusalBody(Vec<u8>);

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
        let Some(count) = Counted::new(host) else {
            return Err(JsErrorBox::generic(format!(
                "the app has {} WebSockets open, as many as its limits.websockets allows",
                host.meter.limits().websockets
            )));
        };
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
    let answer = crate::websocket::connect::connect(&url, &headers, allow_private)
        .await
        .map_err(JsErrorBox::type_error)?;
    match answer {
        crate::websocket::connect::Answer::Upgraded(stream, headers) => {
            let opening = Box::pin(async move { Ok(stream) });
            let socket = Socket::new(Role::Client, auto_reply, opening, memory, Box::new(count));
            let rid = state
                .borrow_mut()
                .resource_table
                .add(WsResource::new(socket, request_id));
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
            let body = state.borrow_mut().resource_table.add(RefusalBody(body));
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
    if let Ok(body) = state.resource_table.take::<RefusalBody>(rid)
        && body.0.len() == into.len()
    {
        into.copy_from_slice(&body.0);
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
    let (received, charge) = tokio::select! {
        got = res.socket.next() => got,
        () = sockets.going_away() => {
            let (code, reason) = GOING_AWAY;
            res.socket.close(code, reason);
            (Received::Gone { code, reason: reason.into(), error: None }, Charge::none())
        }
        () = res.cancelled() => (Received::gone(1006, "the WebSocket is closed"), Charge::none()),
    };
    let kind = kind(&received);
    let id = state
        .borrow_mut()
        .borrow_mut::<HostState>()
        .start_event(res.request_id);
    *res.parked.borrow_mut() = Some((received, charge));
    (id << 2) | kind
}

fn kind(received: &Received) -> u32 {
    match received {
        Received::Text(_) => KIND_TEXT,
        Received::Binary(_) => KIND_BINARY,
        Received::Close { .. } => KIND_CLOSE,
        Received::Gone { .. } => KIND_GONE,
    }
}

/// The text message socket `rid` read last (taken: empty after).
#[op2]
#[string]
pub(super) fn op_edge_ws_text(state: &mut OpState, #[smi] rid: u32) -> String {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return String::new();
    };
    let mut parked = res.parked.borrow_mut();
    match parked.take() {
        Some((Received::Text(text), _charge)) => text,
        other => {
            *parked = other;
            String::new()
        }
    }
}

/// The length of the binary message socket `rid` read last. What it held of the isolate's
/// memory is given back now: the script allocates its own copy next, which counts.
#[op2(fast)]
#[smi]
pub(super) fn op_edge_ws_binary_len(state: &mut OpState, #[smi] rid: u32) -> u32 {
    let Ok(res) = state.resource_table.get::<WsResource>(rid) else {
        return 0;
    };
    let mut parked = res.parked.borrow_mut();
    match parked.as_mut() {
        Some((Received::Binary(bytes), charge)) => {
            *charge = Charge::none();
            bytes.len() as u32
        }
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
    if let Some((Received::Binary(bytes), _)) = parked
        && bytes.len() == into.len()
    {
        into.copy_from_slice(&bytes);
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
        Some((Received::Close { code, reason }, _)) => (code, reason, String::new()),
        Some((
            Received::Gone {
                code,
                reason,
                error,
            },
            _,
        )) => (code, reason, error.unwrap_or_default()),
        _ => (1006, String::new(), String::new()),
    }
}

/// Drops socket `rid`'s connection without a close frame (a listener threw): the client
/// sees it cut (1006), as on Workers.
#[op2(fast)]
pub(super) fn op_edge_ws_abort(state: &mut OpState, #[smi] rid: u32) {
    if let Ok(res) = state.resource_table.get::<WsResource>(rid) {
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

/// A send's outcome for the script: a send to a socket that is closed or gone goes nowhere,
/// as on Workers; one that does not fit throws.
fn sent(result: Result<(), SendError>) -> Result<(), JsErrorBox> {
    match result {
        Ok(()) | Err(SendError::Closed) => Ok(()),
        Err(e) => Err(JsErrorBox::generic(e.to_string())),
    }
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

/// Queues a text message on socket `rid`. (A long string comes as UTF-8 bytes instead, through
/// [`op_edge_ws_send_bytes`]: converted on the heap, where it counts.)
#[op2(fast)]
pub(super) fn op_edge_ws_send_text(
    state: &mut OpState,
    #[smi] rid: u32,
    #[string] text: String,
) -> Result<(), JsErrorBox> {
    check_size(text.len())?;
    sent(resource(state, rid)?.socket.send_text(text))
}

/// Queues a message on socket `rid` from bytes (copied: the script may change its buffer
/// after): binary, or text when `text` (the bytes are then UTF-8 the script encoded).
#[op2(fast)]
pub(super) fn op_edge_ws_send_bytes(
    state: &mut OpState,
    #[smi] rid: u32,
    #[buffer] bytes: &[u8],
    text: bool,
) -> Result<(), JsErrorBox> {
    check_size(bytes.len())?;
    let res = resource(state, rid)?;
    if text {
        let text = String::from_utf8_lossy(bytes).into_owned();
        sent(res.socket.send_text(text))
    } else {
        sent(res.socket.send_binary(bytes.to_vec()))
    }
}

/// Queues a close frame on socket `rid`, after the sends before it (`code` 0: none). The
/// script has checked the code; it is checked again here.
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
    resource(state, rid)?.socket.close(code, &reason);
    Ok(())
}

impl HostState {
    /// Starts an event of a socket opened by `request_id` (a message, or its end) as an
    /// invocation in flight; returns its id.
    fn start_event(&mut self, request_id: RequestId) -> u32 {
        let id = self.fresh_id();
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
