//! [`QueueBackend`]: the engine-free storage a queue binding runs on. Async and free of redb
//! types, so a networked (multi-node) backend can sit behind it later.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::QueueError;
use crate::message::{Message, NewMessage, QueueStats, Settle};

/// A queue operation to come.
pub type QueueFuture<T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send>>;

/// What a consumer needs to know to decide when to take a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Messages deliverable now.
    pub ready: u64,
    /// When the next delayed message becomes deliverable (ms since the epoch), if any.
    pub next_delayed_ms: Option<u64>,
}

/// Where queues keep their messages. Delivery is at-least-once: a message leaves the store
/// only when its settlement (ack, dead-lettering) is durable; messages in flight when the
/// process dies are delivered again.
pub trait QueueBackend: Send + Sync + 'static {
    /// Appends `messages` to `queue`, in order; resolves once they are durable.
    fn send(&self, queue: &str, messages: Vec<NewMessage>) -> QueueFuture<()>;

    /// Takes up to `max` messages of `queue` deliverable now, oldest first, and marks them in
    /// flight (their `attempts` counts this delivery).
    fn lease(&self, queue: &str, max: usize) -> QueueFuture<Vec<Message>>;

    /// Settles messages of `queue` in flight (by `seq`); resolves once durable.
    fn settle(&self, queue: &str, outcomes: Vec<(u64, Settle)>) -> QueueFuture<()>;

    /// Puts messages in flight back, their delivery not counted (a batch that could not be
    /// handed to its consumer). Nothing durable changes: attempts are stored only on retry.
    fn release(&self, queue: &str, seqs: &[u64]);

    /// What `queue` holds now, for a consumer deciding when to take a batch.
    fn readiness(&self, queue: &str) -> Readiness;

    /// Notified whenever a message may have become deliverable in `queue`.
    fn watch(&self, queue: &str) -> Arc<tokio::sync::Notify>;

    /// Every known queue's counts.
    fn stats(&self) -> Vec<QueueStats>;

    /// Up to `max` messages of `queue` waiting (ready first, then delayed), without taking
    /// them.
    fn peek(&self, queue: &str, max: usize) -> QueueFuture<Vec<Message>>;
}
