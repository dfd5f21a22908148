//! Messages as producers send them and consumers receive them.

use serde::{Deserialize, Serialize};

/// How a message's body is encoded, as Workers names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    /// JSON text (the default).
    #[default]
    Json,
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Bytes,
    /// The engine's structured-clone serialization.
    V8,
}

impl ContentType {
    /// The name (`"json"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
            Self::Bytes => "bytes",
            Self::V8 => "v8",
        }
    }

    /// The type named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json,
            "text" => Self::Text,
            "bytes" => Self::Bytes,
            "v8" => Self::V8,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Text,
            2 => Self::Bytes,
            3 => Self::V8,
            _ => Self::Json,
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The encoded body.
    pub body: Vec<u8>,
    /// How it is encoded.
    pub content_type: ContentType,
    /// Seconds before it may be delivered.
    pub delay_secs: u32,
}

/// A message in a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id: 32 hex digits, unique.
    pub id: String,
    /// Its position in the queue (FIFO order).
    pub seq: u64,
    /// When it was sent, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The encoded body.
    pub body: Vec<u8>,
    /// How it is encoded.
    pub content_type: ContentType,
    /// Deliveries so far, this one included once leased (1 on the first delivery).
    pub attempts: u32,
}

/// What becomes of a delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done: removed.
    Ack,
    /// Delivered again after `delay_secs`.
    Retry {
        /// Seconds before the next delivery.
        delay_secs: u32,
    },
    /// Moved to the end of the queue `queue` (a dead-letter queue), attempts reset.
    DeadLetter {
        /// The dead-letter queue.
        queue: String,
    },
    /// Removed without delivery (retries used up and no dead-letter queue).
    Drop,
}

/// The state of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Messages waiting, deliverable now.
    pub ready: u64,
    /// Messages waiting for their delay.
    pub delayed: u64,
    /// Messages delivered and not yet settled.
    pub in_flight: u64,
    /// Body bytes stored (waiting or in flight).
    pub bytes: u64,
}

/// A new message id: 32 random hex digits.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness ids are still unique within a queue (seq is stored beside them).
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
