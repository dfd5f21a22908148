//! The `queue` handler: batches from the queues an app consumes (`[[queues.consumers]]`).

use std::cell::RefCell;

/// One message, as Workers' `Message`.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its body, encoded as `content_type` says.
    pub body: Vec<u8>,
    /// `json`, `text`, `bytes` (or `v8`, from a JavaScript producer: not decodable here).
    pub content_type: String,
    /// Deliveries so far, this one included.
    pub attempts: u32,
}

impl Message {
    /// The body as text (lossy); for `json` and `text` messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A batch, as Workers' `MessageBatch`: the messages, and what the handler decides about
/// them. A message neither acked nor retried is acked when the handler returns `Ok` and
/// retried when it returns `Err`.
#[derive(Debug)]
pub struct MessageBatch {
    /// The queue's name.
    pub queue: String,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    decided: RefCell<Decisions>,
}

#[derive(Debug, Default)]
#[doc(hidden)]
pub struct Decisions {
    pub acks: Vec<String>,
    pub retries: Vec<(String, Option<u32>)>,
    pub ack_all: bool,
    pub retry_all: bool,
    pub retry_all_delay: Option<u32>,
}

impl MessageBatch {
    #[doc(hidden)]
    pub fn new(queue: String, messages: Vec<Message>) -> Self {
        Self {
            queue,
            messages,
            decided: RefCell::default(),
        }
    }

    /// Marks `message` delivered (`message.ack()`).
    pub fn ack(&self, message: &Message) {
        self.decided.borrow_mut().acks.push(message.id.clone());
    }

    /// Asks for `message` again, after `delay_seconds` if given (`message.retry()`).
    pub fn retry(&self, message: &Message, delay_seconds: Option<u32>) {
        self.decided
            .borrow_mut()
            .retries
            .push((message.id.clone(), delay_seconds));
    }

    /// Marks every message delivered (`batch.ackAll()`).
    pub fn ack_all(&self) {
        self.decided.borrow_mut().ack_all = true;
    }

    /// Asks for every message again (`batch.retryAll()`).
    pub fn retry_all(&self, delay_seconds: Option<u32>) {
        let mut d = self.decided.borrow_mut();
        d.retry_all = true;
        d.retry_all_delay = delay_seconds;
    }

    #[doc(hidden)]
    pub fn into_decisions(self) -> Decisions {
        self.decided.into_inner()
    }
}

/// An app's `queue` handler; export it with [`export_queue!`](crate::export_queue).
pub trait Consumer {
    /// Handles one batch.
    fn queue(batch: &MessageBatch) -> Result<(), String>;
}

/// Exports `$t`'s [`Consumer`] implementation as the component's `edge:runtime/queue-handler`.
#[macro_export]
macro_rules! export_queue {
    ($t:ty) => {
        const _: () = {
            use $crate::__private::consumer_world::exports::edge::runtime::queue_handler as __h;
            struct __EdgeConsumer;
            impl __h::Guest for __EdgeConsumer {
                fn queue(b: __h::MessageBatch) -> __h::Outcome {
                    let batch = $crate::MessageBatch::new(
                        b.queue,
                        b.messages
                            .into_iter()
                            .map(|m| $crate::Message {
                                id: m.id,
                                timestamp: m.timestamp,
                                body: m.body,
                                content_type: m.content_type,
                                attempts: m.attempts,
                            })
                            .collect(),
                    );
                    let result = <$t as $crate::Consumer>::queue(&batch);
                    let d = batch.into_decisions();
                    __h::Outcome {
                        acks: d.acks,
                        retries: d.retries,
                        ack_all: d.ack_all,
                        retry_all: d.retry_all,
                        retry_all_delay: d.retry_all_delay,
                        error: result.err(),
                    }
                }
            }
            $crate::__private::consumer_world::__export_edge_consumer!(__EdgeConsumer with_types_in $crate::__private::consumer_world);
        };
    };
}
