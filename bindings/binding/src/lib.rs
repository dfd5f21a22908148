//! The contract every binding implements, and the registry a node hosts bindings through.
//!
//! A binding (KV, queues, …) is one crate with one type implementing [`Binding`] (and, for
//! JavaScript, [`js::JsBinding`]). Its life on a node has four steps, as Spin's factors do:
//!
//! 1. **Config**: [`Binding::parse`] reads its own top-level key of an app's `edge.toml`
//!    (`kv_namespaces`, …) into typed entries, with the same file/key/line errors as the rest
//!    of the file. Each entry puts one name on the app's `env` and may claim a node-wide
//!    resource ([`Claim`]) that no other app may then take.
//! 2. **Node**: [`Binding::open`] opens its node-wide storage in the [`NodeStore`] once, when
//!    the first app needs it.
//! 3. **App**: [`Binding::configure`] turns an app's entries into what its code is handed
//!    ([`Binding::App`]), checked once when the app loads, not on each call.
//! 4. **Instance**: [`js::JsBinding::install`] puts that into a new isolate; the isolate's
//!    JavaScript learns the app's bindings as data (`[name, kind, index]`) and each binding's
//!    script makes the object for its kind (`ext:edge_binding/registry.js`).
//!
//! A binding that runs handlers of its own accord (cron, a queue consumer) follows what the
//! node serves through [`Binding::attach`] and runs them through the node's [`Host`].
//!
//! A node hosts the bindings of one [`Registry`], which erases their types. Adding a binding
//! is its crate plus one `register` line where the binary builds its registry.

mod binding;
mod config;
mod host;
#[cfg(feature = "js")]
pub mod js;
mod metrics;
mod registry;
mod store;
#[cfg(feature = "wasm")]
pub mod wasm;

pub mod admin;
pub use binding::{AppInfo, Binding, Claim};
pub use config::{ConfigIssue, Declared, Section, is_identifier};
pub use host::{
    DispatchError, DispatchFuture, Host, HostEvent, HostReply, QueueBatch, QueueMessage,
    QueueOutcome,
};
pub use metrics::{MetricKind, MetricSample};
pub use registry::{AppBindings, DeclaredBinding, MaybeJs, MaybeWasm, Registrable, Registry};
pub use store::{NodeStore, StoreError, open_redb};
