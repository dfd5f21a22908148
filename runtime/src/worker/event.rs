//! What a worker is asked to handle, and what it answers: the same for every engine.

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::body::ResponseBody;
use crate::error::InvokeError;

/// The body of a request on its way into a worker.
pub type RequestBody =
    http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A request body as the front door hands it over.
pub enum InvocationBody {
    /// No body.
    Empty,
    /// A small body, already received in full: handed to the script as bytes, so
    /// `request.text()` and friends need no stream.
    Full(Bytes),
    /// A body still arriving: the script reads it as a stream.
    Stream(RequestBody),
}

/// What a worker answers: a response (whose body may still be streaming) or why there is none.
pub type Reply = Result<http::Response<ResponseBody>, InvokeError>;

/// One event for a worker to handle: an HTTP request, or an event with no request (a cron
/// trigger), all through the same tenant, limits and worker.
pub struct Invocation {
    /// The id logged with everything this invocation causes.
    pub request_id: crate::RequestId,
    /// What happened.
    pub event: Event,
    /// Where the reply goes. For an event other than a request, an empty `200` once the
    /// handler's promise settles, or the error it threw.
    pub reply: oneshot::Sender<Reply>,
}

/// The events an app's handlers take (`export default { fetch, scheduled, queue }`).
pub enum Event {
    /// An HTTP request, for `fetch`.
    Fetch(FetchRequest),
    /// A cron trigger, for `scheduled`.
    Scheduled(ScheduledEvent),
    /// A batch of queue messages, for `queue`. The reply's body is the handler's decisions
    /// as JSON ([`edge_binding::QueueOutcome`]), status 500 if it threw.
    Queue(edge_binding::QueueBatch),
}

/// An HTTP request on its way into a worker.
pub struct FetchRequest {
    /// The HTTP method.
    pub method: http::Method,
    /// The full URL, with scheme and host.
    pub url: String,
    /// Request headers, in order.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: InvocationBody,
    /// What `request.cf` is made of (`None`: a request that did not come through the front
    /// door; the script sees `undefined`).
    pub cf: Option<Box<super::RequestCf>>,
    /// Set when the request asked for a WebSocket and the connection can be upgraded (an
    /// HTTP/1.1 `GET` with a valid handshake): what a `101` answer with a `webSocket` takes
    /// over.
    pub upgrade: Option<Box<crate::websocket::Upgrade>>,
}

/// A cron trigger firing, as Workers' `ScheduledController` describes it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledEvent {
    /// The cron expression that fired (empty when fired by hand without one).
    pub cron: String,
    /// When it was due, in milliseconds since the Unix epoch.
    pub scheduled_time: f64,
}
