//! Sending to the app's queues (`[[queues.producers]]` in `edge.toml`), by binding name.

use crate::__private::imports::edge::runtime::queue as host;

/// How a message body is encoded (what a JavaScript consumer's `message.body` becomes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentType {
    /// Raw bytes (`ArrayBuffer` in JavaScript).
    #[default]
    Bytes,
    /// UTF-8 text (a string).
    Text,
    /// JSON text (the parsed value).
    Json,
}

impl ContentType {
    fn name(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// One of the app's queue producers.
pub struct Queue {
    binding: String,
}

impl Queue {
    /// The producer bound as `binding` (e.g. `"JOBS"`).
    pub fn new(binding: &str) -> Self {
        Self {
            binding: binding.to_string(),
        }
    }

    /// Sends `body`; returns once the message is durable.
    pub fn send(&self, body: impl Into<Vec<u8>>, content_type: ContentType) -> Result<(), String> {
        self.send_delayed(body, content_type, None)
    }

    /// Sends `body`, delivered no sooner than `delay_seconds` from now.
    pub fn send_delayed(
        &self,
        body: impl Into<Vec<u8>>,
        content_type: ContentType,
        delay_seconds: Option<u32>,
    ) -> Result<(), String> {
        host::send(
            &self.binding,
            &body.into(),
            &host::SendOptions {
                content_type: Some(content_type.name().to_string()),
                delay_seconds,
            },
        )
    }

    /// Sends JSON text you made.
    pub fn send_json(&self, json: impl Into<String>) -> Result<(), String> {
        self.send(json.into(), ContentType::Json)
    }

    /// Sends text.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), String> {
        self.send(text.into(), ContentType::Text)
    }

    /// Sends many messages at once (at most 100), all or none.
    pub fn send_batch(&self, messages: Vec<(Vec<u8>, ContentType)>) -> Result<(), String> {
        let entries: Vec<host::BatchEntry> = messages
            .into_iter()
            .map(|(body, content_type)| host::BatchEntry {
                body,
                options: host::SendOptions {
                    content_type: Some(content_type.name().to_string()),
                    delay_seconds: None,
                },
            })
            .collect();
        host::send_batch(&self.binding, &entries)
    }
}
