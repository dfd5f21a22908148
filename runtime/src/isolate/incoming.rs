//! Requests on their way into the isolate, and the ops `host.js` takes them with.
//!
//! `host.js` waits for the queue with one promise per batch ([`op_edge_wait_request`]), then
//! takes each queued request as a number ([`op_edge_take_request`]): its id among the
//! invocations in flight. Nothing else crosses until the script asks: the method, URL and
//! headers come over as one string the first time the `Request` is read
//! ([`op_edge_request_head`]), the body when it is first touched ([`op_edge_request_body`]).
//! A handler that never reads its request (a hello world) costs no string conversion at all.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use deno_core::{OpState, op2};
use tokio::sync::mpsc;

use super::ops::{HostState, Inflight};
use super::request_body::RequestBodyResource;
use super::{Event, Invocation, InvocationBody};

/// Invocation ids stay below this, so that every id is a small integer in every engine.
pub(crate) const ID_LIMIT: u32 = 1 << 30;

/// The requests queued for an isolate, shared with its thread (which hands back whatever is
/// left when the isolate stops).
pub(crate) struct Queue {
    pub(crate) rx: mpsc::UnboundedReceiver<Invocation>,
    /// A request [`op_edge_wait_request`] took to see that one was there, for
    /// [`op_edge_take_request`] to hand over first.
    pub(crate) next: Option<Invocation>,
}

impl Queue {
    /// Closes the queue and returns what is still in it.
    pub(crate) fn close(&mut self) -> Vec<Invocation> {
        self.rx.close();
        let mut left: Vec<Invocation> = self.next.take().into_iter().collect();
        while let Ok(inv) = self.rx.try_recv() {
            left.push(inv);
        }
        left
    }
}

/// What the script has not yet taken of a request.
pub(crate) struct RequestParts {
    /// Method, URL and headers, until the script first reads the request.
    head: Option<(http::Method, String, http::HeaderMap)>,
    /// The body, until the script first touches it.
    body: InvocationBody,
    /// A body received whole, between [`op_edge_request_body`] and [`op_edge_request_bytes`].
    bytes: Option<Bytes>,
    /// What `request.cf` is made of, until the script first reads it.
    cf: Option<Box<crate::worker::RequestCf>>,
    /// The connection's upgrade, when the request asked for a WebSocket, until a `101`
    /// answer takes it ([`super::websocket`]).
    pub(crate) upgrade: Option<Box<crate::websocket::Upgrade>>,
}

impl RequestParts {
    /// None: the invocation is an event, not a request.
    pub(crate) fn none() -> Self {
        Self {
            head: None,
            body: InvocationBody::Empty,
            bytes: None,
            cf: None,
            upgrade: None,
        }
    }
}

/// Waits until a request is queued: true, and `host.js` takes the queued requests with
/// [`op_edge_take_request`]; false when the isolate should stop (the tenant was retired, or
/// the isolate sat idle with nothing in flight).
///
/// Lazy: resolved from the event loop even when a request is already queued, never within the
/// call. On the quickjs engine, a handler that spins in promise microtasks right after an
/// async op completed within its call escapes termination (the engine facade keeps running
/// the promise chain after the watchdog stops it); requests must not start that way.
#[op2(async(lazy), fast)]
pub(crate) async fn op_edge_wait_request(state: Rc<RefCell<OpState>>) -> bool {
    let (queue, idle) = {
        let s = state.borrow();
        let host = s.borrow::<HostState>();
        (host.queue.clone(), host.idle_timeout)
    };
    // Through `poll_recv`, which spends tokio's cooperative budget, so a busy queue still lets
    // the thread's other tasks run between batches. The idle timer is made only when nothing
    // is queued. The queue is borrowed only within a poll, never across an await.
    let mut idle_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let next = std::future::poll_fn(|cx| {
            let Ok(mut queue) = queue.try_borrow_mut() else {
                return std::task::Poll::Ready(Some(false));
            };
            if queue.next.is_some() {
                return std::task::Poll::Ready(Some(true));
            }
            if let std::task::Poll::Ready(inv) = queue.rx.poll_recv(cx) {
                let got = inv.is_some();
                queue.next = inv;
                return std::task::Poll::Ready(Some(got));
            }
            let timer = idle_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match next {
            Some(true) => return true,
            Some(false) => {
                // The queue is closed: the tenant retired this isolate (its app was replaced
                // or removed). What is in flight finishes first (each invocation is bounded by
                // its wall-clock limit) and its WebSockets are closed (given a moment for
                // their close frames); then the isolate stops.
                let since = std::time::Instant::now();
                loop {
                    {
                        let s = state.borrow();
                        let host = s.borrow::<HostState>();
                        host.sockets.go_away();
                        if host.inflight.is_empty()
                            && (host.sockets.is_empty() || since.elapsed() > SOCKETS_CLOSE_WAIT)
                        {
                            return false;
                        }
                    }
                    tokio::time::sleep(RETIRE_POLL).await;
                }
            }
            None => {
                idle_timer = None;
                let s = state.borrow();
                let host = s.borrow::<HostState>();
                // An open WebSocket keeps the isolate: its next message is for this one.
                if host.inflight.is_empty()
                    && host.sockets.is_empty()
                    && host.supervisor.try_retire(host.isolate_id)
                {
                    return false;
                }
            }
        }
    }
}

/// How often a retired isolate looks whether its last invocation has finished.
const RETIRE_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a retired isolate waits for its WebSockets' close frames to go out.
const SOCKETS_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the next queued request into flight and returns its id, or -1 when none is queued.
#[op2(fast)]
#[smi]
pub(crate) fn op_edge_take_request(state: &mut OpState) -> i32 {
    let host = state.borrow_mut::<HostState>();
    let invocation = {
        let Ok(mut queue) = host.queue.try_borrow_mut() else {
            return -1;
        };
        match queue.next.take() {
            Some(inv) => inv,
            None => match queue.rx.try_recv() {
                Ok(inv) => inv,
                Err(_) => return -1,
            },
        }
    };
    let (request, other) = match invocation.event {
        Event::Fetch(f) => (
            RequestParts {
                head: Some((f.method, f.url, f.headers)),
                body: f.body,
                bytes: None,
                cf: f.cf,
                upgrade: f.upgrade,
            },
            None,
        ),
        Event::Scheduled(s) => (RequestParts::none(), Some(OtherEvent::Scheduled(s))),
        Event::Queue(b) => (RequestParts::none(), Some(OtherEvent::Queue(b))),
    };
    let is_event = other.is_some();
    let id = host.fresh_id();
    host.stats.invoked();
    host.started_in_turn();
    host.inflight.insert(
        id,
        Inflight {
            request_id: invocation.request_id,
            reply: Some(invocation.reply),
            body_tx: None,
            responded: false,
            wait_until: 0,
            usage: crate::limits::meter::Usage::starting(),
            request,
            event: other,
        },
    );
    // Below ID_LIMIT, so it fits, with room for the event bit.
    if is_event {
        (id | EVENT_BIT) as i32
    } else {
        id as i32
    }
}

/// Set in an id [`op_edge_take_request`] returns when the invocation is an event other than a
/// request (`host.js` then asks [`op_edge_event`] what it is). Ids stay below it.
const EVENT_BIT: u32 = 1 << 30;

/// Event `id` (other than a request) as the script sees it: `{ type: "scheduled", cron,
/// scheduledTime }` or `{ type: "queue", queue, messages: [{ id, timestamp, contentType,
/// attempts }] }` (bodies through [`op_edge_event_body`]); null for an unknown id or a
/// request.
#[op2]
#[serde]
pub(crate) fn op_edge_event(state: &mut OpState, #[smi] id: u32) -> Option<serde_json::Value> {
    let host = state.borrow_mut::<HostState>();
    let event = host.inflight.get(&id)?.event.as_ref()?;
    Some(match event {
        OtherEvent::Scheduled(s) => {
            let mut v = serde_json::to_value(s).ok()?;
            v["type"] = "scheduled".into();
            v
        }
        OtherEvent::Queue(b) => {
            let messages: Vec<serde_json::Value> = b
                .messages
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id,
                        "timestamp": m.timestamp_ms,
                        "contentType": m.content_type,
                        "attempts": m.attempts,
                    })
                })
                .collect();
            serde_json::json!({ "type": "queue", "queue": b.queue, "messages": messages })
        }
    })
}

/// The body of message `index` of queue event `id`, taken (empty after that, or for anything
/// else).
#[op2]
#[buffer]
pub(crate) fn op_edge_event_body(
    state: &mut OpState,
    #[smi] id: u32,
    #[smi] index: u32,
) -> Vec<u8> {
    let host = state.borrow_mut::<HostState>();
    match host.inflight.get_mut(&id).and_then(|e| e.event.as_mut()) {
        Some(OtherEvent::Queue(b)) => b
            .messages
            .get_mut(index as usize)
            .map(|m| std::mem::take(&mut m.body))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// An event other than a request, in flight.
pub(crate) enum OtherEvent {
    /// A cron trigger.
    Scheduled(super::ScheduledEvent),
    /// A batch of queue messages.
    Queue(edge_binding::QueueBatch),
}

/// The method, URL and headers of request `id` as one string, `method \n url \n header-block`
/// (one `name\nvalue\n` per header, as [`super::header_block`] describes, bytes as Latin-1
/// characters, as a `ByteString` has them); handed
/// over once (`host.js` keeps them), empty after that or for an unknown id. A newline cannot
/// occur in a method, a URL or a header (hyper rejects them), so it separates the fields.
#[op2]
#[string]
pub(crate) fn op_edge_request_head(state: &mut OpState, #[smi] id: u32) -> String {
    let host = state.borrow_mut::<HostState>();
    let Some((method, url, headers)) = host
        .inflight
        .get_mut(&id)
        .and_then(|e| e.request.head.take())
    else {
        return String::new();
    };
    join_head(method.as_str(), &url, &headers)
}

/// Request `id`'s `request.cf` object, handed over once (`host.js` keeps it); null for an
/// unknown id, an event, or a request that did not come through the front door.
#[op2]
#[serde]
pub(crate) fn op_edge_request_cf(state: &mut OpState, #[smi] id: u32) -> Option<serde_json::Value> {
    let host = state.borrow_mut::<HostState>();
    let cf = host.inflight.get_mut(&id)?.request.cf.take()?;
    Some(cf.to_json())
}

fn join_head(method: &str, url: &str, headers: &http::HeaderMap) -> String {
    let len = 2
        + method.len()
        + url.len()
        + headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 2)
            .sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(method);
    out.push('\n');
    out.push_str(url);
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name.as_str());
        out.push('\n');
        // Bytes as Latin-1 characters, as a `ByteString` has them.
        match value.to_str() {
            Ok(text) => out.push_str(text),
            Err(_) => out.extend(value.as_bytes().iter().map(|b| char::from(*b))),
        }
        out.push('\n');
    }
    out
}

/// How request `id`'s body reaches the script, handed over once: empty (no body), `b` (bytes
/// received whole, taken with [`op_edge_request_bytes`]) or `s` and a resource id (a stream).
#[op2]
#[string]
pub(crate) fn op_edge_request_body(state: &mut OpState, #[smi] id: u32) -> String {
    let body = {
        let host = state.borrow_mut::<HostState>();
        match host.inflight.get_mut(&id) {
            Some(entry) => std::mem::replace(&mut entry.request.body, InvocationBody::Empty),
            None => InvocationBody::Empty,
        }
    };
    match body {
        InvocationBody::Empty => String::new(),
        InvocationBody::Full(bytes) => {
            let host = state.borrow_mut::<HostState>();
            if let Some(entry) = host.inflight.get_mut(&id) {
                entry.request.bytes = Some(bytes);
            }
            "b".into()
        }
        InvocationBody::Stream(body) => {
            let rid = state.resource_table.add(RequestBodyResource::new(body));
            format!("s{rid}")
        }
    }
}

/// The body of request `id`, received whole: handed over once.
#[op2]
#[buffer]
pub(crate) fn op_edge_request_bytes(state: &mut OpState, #[smi] id: u32) -> Option<Vec<u8>> {
    let host = state.borrow_mut::<HostState>();
    let bytes = host.inflight.get_mut(&id)?.request.bytes.take()?;
    Some(Vec::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_method_url_and_header_block() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "a.test".parse().unwrap());
        assert_eq!(
            join_head("POST", "http://a.test/x?y=1", &headers),
            "POST\nhttp://a.test/x?y=1\nhost\na.test\n"
        );
        assert_eq!(
            join_head("GET", "http://a/", &http::HeaderMap::new()),
            "GET\nhttp://a/\n"
        );
    }

    #[test]
    fn header_bytes_become_latin1_characters() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let head = join_head("GET", "http://a/", &headers);
        assert!(head.ends_with("x\ncaf\u{e9}\n"), "{head:?}");
    }
}
