//! [`Host`]: how a trigger (cron, a queue consumer) runs an app's handler, through the same
//! tenant, worker and limits as a request.

use std::future::Future;
use std::pin::Pin;

/// An event a binding asks the node to run on an app.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HostEvent {
    /// The app's `scheduled` handler, for `cron` due at `scheduled_time` (ms since the epoch).
    Scheduled {
        /// The expression, as the app's config gives it.
        cron: String,
        /// When the slot was due, in milliseconds since the Unix epoch.
        scheduled_time: f64,
    },
    /// The app's `queue` handler, for a batch of messages.
    Queue(QueueBatch),
}

/// A batch of messages for a `queue` handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueBatch {
    /// The queue's name.
    pub queue: String,
    /// The messages, oldest first.
    pub messages: Vec<QueueMessage>,
}

/// One message of a [`QueueBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueMessage {
    /// Its id.
    pub id: String,
    /// When it was sent, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its body, encoded as `content_type` says.
    pub body: Vec<u8>,
    /// `json`, `text`, `bytes` or `v8`.
    pub content_type: String,
    /// Deliveries so far, this one included.
    pub attempts: u32,
}

/// What a `queue` handler decided about its batch: what it acked and retried by name (by
/// message id), and for all messages at once.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueOutcome {
    /// Ids of messages acked with `message.ack()`.
    #[serde(default)]
    pub acks: Vec<String>,
    /// Ids of messages retried with `message.retry()`, with their `delaySeconds`.
    #[serde(default)]
    pub retries: Vec<(String, Option<f64>)>,
    /// `batch.ackAll()` was called.
    #[serde(default)]
    pub ack_all: bool,
    /// `batch.retryAll()` was called.
    #[serde(default)]
    pub retry_all: bool,
    /// The `delaySeconds` `batch.retryAll()` was given, if any.
    #[serde(default)]
    pub retry_all_delay: Option<f64>,
    /// Why the handler failed (it threw), if it did: messages it did not ack are retried.
    #[serde(default)]
    pub error: Option<String>,
}

/// What running an event gave.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HostReply {
    /// The handler's promise settled (a `scheduled` handler).
    Done,
    /// What a `queue` handler decided (also when it threw: see [`QueueOutcome::error`]).
    Queue(QueueOutcome),
}

/// Why an event did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DispatchError {
    /// The `edge-error` code (`script-error`, `cpu-limit`, `no-such-app`, …).
    pub code: String,
    /// What happened.
    pub message: String,
}

/// The outcome of an event: `Ok` once the handler's promise settled (or, for a queue batch,
/// once it reported what it decided); `Err` if it could not run or broke a limit.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<HostReply, DispatchError>> + Send>>;

/// The node, as a binding's triggers see it.
pub trait Host: Send + Sync + 'static {
    /// Runs `event` on the app named `app` (starting its worker if needed) under the app's
    /// limits; resolves when the handler finished, threw, or broke a limit.
    fn dispatch(&self, app: &str, event: HostEvent) -> DispatchFuture;
}
