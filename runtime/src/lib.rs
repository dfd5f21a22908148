//! The edge host: configuration, tenants, routing, the HTTP front door and the JavaScript
//! isolates that run tenants' Workers-style handlers.
//!
//! A [`Node`] holds the tenants; [`server::serve`] answers HTTP for it. Each tenant's script
//! runs in an isolate on a thread of its own (see [`isolate`]); the front door reaches it only
//! through a channel. Bindings (KV, queues, …) live in their own crates under `bindings/` and
//! are known here only through the `edge_binding` contract: the binary hands a node its
//! [`Registry`].

pub mod admin;
pub mod body;
pub mod config;
mod content_coding;
pub mod error;
pub mod isolate;
pub mod limits;
pub mod node;
pub mod request_id;
pub mod router;
pub mod server;
pub mod tenant;
pub mod wasm;
pub mod websocket;
pub mod worker;

pub use config::AppConfig;
pub use edge_binding::{self, Registry};
pub use error::{ERROR_HEADER, ErrorCode, InvokeError};
pub use node::{AppGrant, Node, NodeError, NodeOptions, Reloaded};
pub use request_id::{RequestId, RequestIds};
pub use tenant::install_tls_provider;
