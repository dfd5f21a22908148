//! What can go wrong in a queue call, with the class JavaScript sees.

/// Why a queue call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[cfg_attr(feature = "js", derive(deno_error::JsError))]
#[non_exhaustive]
pub enum QueueError {
    /// The input breaks one of the Queues rules (size, count, delay, content type).
    #[cfg_attr(feature = "js", class(type))]
    #[error("Queue send failed: {0}")]
    Rule(String),
    /// The store failed (I/O, corruption); the operation did not happen.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("Queue operation failed: storage error: {0}")]
    Storage(String),
    /// The queue holds as many bytes as the node allows one queue.
    #[cfg_attr(feature = "js", class(generic))]
    #[error(
        "Queue send failed: queue {queue:?} holds {stored} bytes, and the node allows {quota} bytes per queue (edge serve --queue-quota-mb); the messages were not sent"
    )]
    Quota {
        /// The queue.
        queue: String,
        /// Bytes it holds.
        stored: u64,
        /// The node's bound.
        quota: u64,
    },
    /// The script named a binding its app does not have.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("no queue binding at index {0}")]
    NotBound(u32),
}

impl QueueError {
    pub(crate) fn rule(reason: String) -> Self {
        Self::Rule(reason)
    }

    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}
