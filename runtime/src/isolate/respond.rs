//! Responses on their way out of the isolate, and the ops `host.js` answers with: a body known
//! in full, or a stream the script writes chunk by chunk; a handler that threw.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use deno_core::{JsBuffer, OpState, op2};
use http::header::CONTENT_LENGTH;
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::sync::mpsc;

use super::Reply;
use super::ops::{HostState, limit_error};
use crate::body::{BodyEnd, BodyError, ResponseBody};
use crate::content_coding::{self, Coding, Encoder};
use crate::error::{ErrorCode, InvokeError};
use crate::limits::LimitKind;
use crate::limits::memory::IsolateMemory;

/// How many response chunks may wait between the script and a slow client.
const BODY_CHANNEL_CHUNKS: usize = 8;

/// The sending side of a streamed response.
pub(crate) struct StreamOut {
    pub(super) tx: mpsc::Sender<Result<Bytes, BodyError>>,
    /// Marks the body complete when the script closes it; dropped unmarked, it is cut.
    pub(super) end: BodyEnd,
    /// Wakes a write waiting on a slow client when the invocation is stopped.
    pub(super) cancel: Rc<tokio::sync::Notify>,
    /// Encodes the chunks when the script's `Content-Encoding` asks for it.
    encoder: Option<Encoder>,
    /// The encoder's memory, charged to the isolate while the stream is open.
    _charge: Option<MemoryCharge>,
}

/// Bytes counted against an isolate's memory until dropped.
struct MemoryCharge {
    memory: Arc<IsolateMemory>,
    bytes: usize,
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

/// The coding the runtime applies to a response with this head and a body: the one its
/// `Content-Encoding` names (see [`crate::content_coding`]), unless the script marked the body
/// already encoded (`manual`) or the status has no body.
fn coding_for<B>(res: &http::Response<B>, manual: bool) -> Option<Coding> {
    let status = res.status();
    if manual
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return None;
    }
    Coding::of(res.headers())
}

/// Most response headers a script may send (hyper's header map holds at most 32,768).
pub(crate) const MAX_RESPONSE_HEADERS: usize = 4_096;

/// Most bytes of response header names and values a script may send, as Workers allows.
pub(crate) const MAX_RESPONSE_HEADER_BYTES: usize = 128 << 10;

/// The response head the front door will send, or why it cannot: a bad status, a bad header,
/// or more headers than [`MAX_RESPONSE_HEADERS`] / [`MAX_RESPONSE_HEADER_BYTES`]. Never panics,
/// whatever the script passed.
pub(super) fn build_head(
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

pub(super) fn send_reply(state: &mut OpState, id: u32, reply: Reply) {
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
pub(super) fn refuse(state: &mut OpState, id: u32, reason: &str) {
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

/// Answers request `id` with `body` known in full, encoded first if the head asks for it
/// (`manual`: the script's body is already encoded).
fn respond_full(
    state: &mut OpState,
    id: u32,
    status: u32,
    headers: &[u8],
    body: &[u8],
    manual: bool,
) {
    let mut res = match build_head(status, headers, ResponseBody::empty()) {
        Ok(res) => res,
        Err(msg) => return refuse(state, id, &msg),
    };
    let body = match coding_for(&res, manual) {
        None => Bytes::copy_from_slice(body),
        Some(coding) => match content_coding::encode(coding, body) {
            Ok(encoded) => {
                res.headers_mut().remove(CONTENT_LENGTH);
                encoded
            }
            Err(e) => return refuse(state, id, &format!("encoding the body failed: {e}")),
        },
    };
    *res.body_mut() = ResponseBody::from(body);
    send_reply(state, id, Ok(res));
    state.borrow_mut::<HostState>().finish(id);
}

/// Answers request `id` with a text body known in full (or none: an empty string, `manual`).
#[op2(fast)]
pub(super) fn op_edge_respond_text(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
    #[string] body: &str,
    manual: bool,
) {
    respond_full(state, id, status, &latin1(headers), body.as_bytes(), manual);
}

/// Answers request `id` with a byte body known in full.
#[op2]
pub(super) fn op_edge_respond_bytes(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
    #[buffer] body: JsBuffer,
    manual: bool,
) {
    respond_full(state, id, status, &latin1(headers), &body, manual);
}

/// Answers request `id` with a body that the script will stream with `op_edge_body_write`.
#[op2(fast)]
pub(super) fn op_edge_respond_stream(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] status: u32,
    #[string] headers: &str,
    manual: bool,
) {
    let (tx, end, body) = crate::body::body_channel(BODY_CHANNEL_CHUNKS);
    let mut res = match build_head(status, &latin1(headers), body) {
        Ok(res) => res,
        Err(msg) => return refuse(state, id, &msg),
    };
    let host = state.borrow_mut::<HostState>();
    let (encoder, charge) = match coding_for(&res, manual) {
        None => (None, None),
        Some(coding) => {
            let bytes = coding.encoder_memory();
            if !host.memory.reserve(bytes) {
                if let Some((_, tx)) = host.take_reply(id) {
                    let _ = tx.send(Err(limit_error(LimitKind::Memory, host.meter.limits())));
                }
                host.finish(id);
                return;
            }
            res.headers_mut().remove(CONTENT_LENGTH);
            let charge = MemoryCharge {
                memory: host.memory.clone(),
                bytes,
            };
            (Some(Encoder::new(coding)), Some(charge))
        }
    };
    if let Some(entry) = host.inflight.get_mut(&id) {
        entry.body_tx = Some(StreamOut {
            tx,
            end,
            cancel: Rc::default(),
            encoder,
            _charge: charge,
        });
    }
    send_reply(state, id, Ok(res));
}

/// Sends one chunk of a streamed response. Resolves to false when the client went away.
#[op2]
pub(super) async fn op_edge_body_write(
    state: Rc<RefCell<OpState>>,
    #[smi] id: u32,
    #[buffer] chunk: JsBuffer,
) -> bool {
    let (tx, cancel, chunk) = {
        let mut s = state.borrow_mut();
        let Some(out) = s
            .borrow_mut::<HostState>()
            .inflight
            .get_mut(&id)
            .and_then(|e| e.body_tx.as_mut())
        else {
            return false;
        };
        let chunk = match out.encoder.as_mut() {
            None => Bytes::copy_from_slice(&chunk),
            Some(encoder) => match encoder.chunk(&chunk) {
                Ok(encoded) if encoded.is_empty() => return true,
                Ok(encoded) => encoded,
                Err(e) => {
                    let _ = out
                        .tx
                        .try_send(Err(BodyError(format!("encoding failed: {e}"))));
                    drop(s);
                    state.borrow_mut().borrow_mut::<HostState>().finish(id);
                    return false;
                }
            },
        };
        (out.tx.clone(), out.cancel.clone(), chunk)
    };
    // A client that does not read holds the write until the invocation is stopped.
    let ok = tokio::select! {
        sent = tx.send(Ok(chunk)) => sent.is_ok(),
        () = cancel.notified() => false,
    };
    if !ok {
        state.borrow_mut().borrow_mut::<HostState>().finish(id);
    }
    ok
}

/// Ends a streamed response.
#[op2(fast)]
pub(super) fn op_edge_body_close(state: &mut OpState, #[smi] id: u32) {
    let host = state.borrow_mut::<HostState>();
    if let Some(out) = host.inflight.get_mut(&id).and_then(|e| e.body_tx.as_mut()) {
        match out.encoder.take() {
            None => out.end.complete(),
            Some(encoder) => match encoder.finish() {
                Ok(last) => out.end.complete_with(last),
                // Unmarked, the body is cut: the client sees it did not end.
                Err(e) => {
                    let _ = out
                        .tx
                        .try_send(Err(BodyError(format!("encoding failed: {e}"))));
                }
            },
        }
    }
    host.finish(id);
}

/// Aborts a streamed response: the client sees the connection cut, not a clean end.
#[op2(fast)]
pub(super) fn op_edge_body_error(state: &mut OpState, #[smi] id: u32, #[string] message: &str) {
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
pub(super) fn op_edge_fail(state: &mut OpState, #[smi] id: u32, #[string] message: &str) {
    fail(state, id, message);
}
