//! Write edge apps in Rust. Build with `cargo build --target wasm32-wasip2 --release` and point
//! an app's `edge.toml` `main` at the `.wasm` file; the same app can answer requests, use KV
//! and queues, and take cron triggers and queue batches, as a JavaScript Worker does with
//! `export default { fetch, scheduled, queue }`:
//!
//! ```ignore
//! use edge_sdk::{Fetch, Request, Response, kv::Kv};
//!
//! struct App;
//!
//! impl Fetch for App {
//!     fn fetch(req: Request) -> Response {
//!         let kv = Kv::open("COUNTS").expect("bound in edge.toml");
//!         let n = kv.increment(req.path(), 1).unwrap_or(0);
//!         Response::text(200, format!("{} has been seen {n} times\n", req.path()))
//!     }
//! }
//!
//! edge_sdk::export_fetch!(App);
//! ```
//!
//! - [`Fetch`] + [`export_fetch!`]: the `wasi:http/incoming-handler` export, with the request
//!   and response as plain values (the body read in full). For streaming, implement
//!   `wasi:http` yourself with the re-exported [`wasi`] crate.
//! - [`kv`]: the app's KV namespaces, by binding name (`wasi:keyvalue`).
//! - [`queue`]: sending to the app's queues, by binding name (`edge:runtime/queue`).
//! - [`Scheduled`] + [`export_scheduled!`]: the `scheduled` handler (cron triggers).
//! - [`Consumer`] + [`export_queue!`]: the `queue` handler (batches of messages).
//!
//! Outside wasm32 the crate compiles (for docs and `cargo check`), but calling into the host
//! panics.

mod consumer;
mod http;
pub mod kv;
pub mod queue;
mod scheduled;

pub use consumer::{Consumer, Message, MessageBatch};
pub use http::{Fetch, Request, Response};
pub use scheduled::{Scheduled, ScheduledController};
pub use wasi;

#[doc(hidden)]
pub use http::serve as __serve;

/// The generated bindings; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// What the host provides: wasi:keyvalue and edge:runtime/queue.
    pub mod imports {
        wit_bindgen::generate!({
            path: "../wit",
            world: "edge:runtime/imports",
            generate_all,
            runtime_path: "wit_bindgen::rt",
        });
    }

    /// The `scheduled` handler export.
    pub mod scheduled_world {
        wit_bindgen::generate!({
            path: "../wit",
            world: "edge:runtime/scheduled",
            pub_export_macro: true,
            export_macro_name: "__export_edge_scheduled",
            default_bindings_module: "edge_sdk::__private::scheduled_world",
            runtime_path: "wit_bindgen::rt",
        });
    }

    /// The `queue` handler export.
    pub mod consumer_world {
        wit_bindgen::generate!({
            path: "../wit",
            world: "edge:runtime/consumer",
            pub_export_macro: true,
            export_macro_name: "__export_edge_consumer",
            default_bindings_module: "edge_sdk::__private::consumer_world",
            runtime_path: "wit_bindgen::rt",
        });
    }

    pub use wasi;
}
