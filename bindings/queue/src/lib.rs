//! The queue binding: Cloudflare Workers Queues' API and rules, durable on the node.
//!
//! - [`QueueBackend`] is the engine-free storage trait (async, so a networked backend can sit
//!   behind it later); [`QueueStore`] implements it in a redb file (`queues.redb`, group
//!   commits, at-least-once delivery) or in memory.
//! - [`rules`] are the producer limits every caller goes through.
//! - [`Queues`] is the binding a node registers: `[[queues.producers]]` put a producer on
//!   `env`, `[[queues.consumers]]` make the app's `queue` handler take a queue's batches (a
//!   consumer task per queue, see `consumer`), `queues.redb` in the node's data directory, and
//!   the admin routes behind `edge queue`.
//! - `js` (feature `js`) is the deno_core adapter: `env.JOBS.send/sendBatch`.

mod admin;
pub mod backend;
mod binding;
mod consumer;
pub mod error;
#[cfg(feature = "js")]
mod js;
pub mod message;
pub mod rules;
mod store;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use backend::{QueueBackend, QueueFuture, Readiness};
pub use binding::{ConsumerSettings, PendingSend, QueueBindings, QueueEntry, QueueNode, Queues};
pub use error::QueueError;
pub use message::{ContentType, Message, NewMessage, QueueStats, Settle};
pub use store::QueueStore;
