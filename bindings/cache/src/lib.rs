//! The Cache API: Workers' `caches.default` and `caches.open(name)`, stored on the node.
//!
//! - [`policy`] decides whether a response is stored and for how long (HTTP caching for a
//!   shared cache, with Cloudflare's rules: `Set-Cookie`, default edge TTLs); [`range`] and
//!   [`answer`] make what `match` returns (`304`, `206`, `416`, `cf-cache-status: HIT`).
//! - [`CacheBackend`] is the engine-free storage trait: [`RedbBackend`] (one `cache.redb` per
//!   node, group-committed writes, least-recently-used eviction within a node bound and a
//!   per-app bound) and [`MemoryBackend`] implement it.
//! - [`AppCache`] is what one app is handed: its own entries only, the rules, a bound on body
//!   bytes waiting to be stored.
//! - [`Cache`] is the binding as a node hosts it (the `edge_binding` contract, ambient: every
//!   app has it without declaring it).
//! - `js` (feature `js`) is the deno_core adapter: the global `caches`, `Cache` and
//!   `CacheStorage`.

pub mod answer;
mod app;
pub mod backend;
mod binding;
pub mod error;
mod index;
#[cfg(feature = "js")]
pub mod js;
mod memory;
pub mod policy;
pub mod range;
mod redb;
#[cfg(feature = "wasm")]
mod wasm;

pub use app::{AppCache, Counters, MAX_ENTRY_BYTES, Pending, now_ms};
pub use backend::{CacheBackend, CacheFuture, Entry, EntryKey, Usage};
pub use binding::{Cache, CacheNode, Never};
pub use error::CacheError;
pub use index::{Bounds, ENTRY_OVERHEAD, charge};
pub use memory::MemoryBackend;
pub use redb::RedbBackend;
