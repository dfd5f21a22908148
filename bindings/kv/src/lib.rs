//! The KV binding: Cloudflare Workers KV's API and rules, stored durably on the node.
//!
//! - [`KvBackend`] is the engine-free storage trait; [`RedbBackend`] (one redb file per node,
//!   group-committed durable writes, background purge of expired keys) and [`MemoryBackend`]
//!   implement it, and a networked backend can later.
//! - [`Namespace`] is what an app is handed for one `[[kv_namespaces]]` binding: it checks
//!   Workers' rules (in [`rules`]) and calls the backend with the namespace id.
//! - [`Kv`] is the binding as a node hosts it (the `edge_binding` contract): the
//!   `[[kv_namespaces]]` section, the node's `kv.redb`, each app's [`KvBindings`] (its
//!   namespaces and a bound on its writes awaiting commit), and the admin routes in [`admin`].
//! - `js` (feature `js`, on with an engine feature) is the deno_core adapter that makes
//!   `env.MY_KV` a `KVNamespace` in JavaScript. Without it the crate is engine-free, for a host
//!   that is not JavaScript (wasm).

pub mod admin;
mod app;
pub mod backend;
mod binding;
pub mod clock;
mod cursor;
pub mod error;
#[cfg(feature = "js")]
pub mod js;
mod memory;
mod namespace;
mod redb;
pub mod rules;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use app::{KvBindings, Reserved};
pub use backend::{Entry, KeyInfo, KvBackend, KvFuture, ListPage, ListQuery};
pub use binding::{Kv, KvEntry, KvNode};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{KvError, KvOp};
pub use memory::MemoryBackend;
pub use namespace::{ListOptions, ListResult, Namespace, OpCounts, PutOptions};
pub use redb::{DEFAULT_PURGE_INTERVAL, OpenError, RedbBackend, RedbOptions, WriterStats};

/// Whether an entry with `expiration` is still visible at `now` (both in Unix seconds).
pub(crate) fn live(expiration: Option<u64>, now: u64) -> bool {
    expiration.is_none_or(|at| at > now)
}
