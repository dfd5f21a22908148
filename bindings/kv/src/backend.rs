//! The engine-free storage trait every KV backend implements, and the values that cross it.
//!
//! Callers (the JavaScript ops, the wasm host, the admin endpoint, the CLI) never talk
//! to a backend directly: they go through [`crate::Namespace`], which checks Workers' rules
//! first. A backend only stores, finds and hides what has expired. Every method is async so a
//! networked backend fits behind the same trait; the local ones answer reads at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::clock::Clock;
use crate::error::KvError;

/// The future a backend method returns.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// A stored value with what was stored alongside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The metadata, as the JSON text it was stored as.
    pub metadata: Option<String>,
    /// When it expires, in seconds since the Unix epoch.
    pub expiration: Option<u64>,
}

/// One key of a [`ListPage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key.
    pub name: String,
    /// When it expires, in seconds since the Unix epoch.
    pub expiration: Option<u64>,
    /// Its metadata, as JSON text.
    pub metadata: Option<String>,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only keys starting with these bytes.
    pub prefix: String,
    /// Only keys after this one (from a cursor).
    pub start_after: Option<String>,
    /// At most this many keys (already checked to be 1–1000).
    pub limit: usize,
}

/// One page of keys, in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The keys.
    pub keys: Vec<KeyInfo>,
    /// More live keys match after the last one.
    pub more: bool,
}

/// Storage for KV namespaces. `ns` is a namespace id; backends keep namespaces apart.
///
/// Expired entries must be invisible to every method as soon as the backend's clock passes
/// their expiration, whether or not they have been purged yet.
pub trait KvBackend: Send + Sync + 'static {
    /// The live entry under `key`.
    fn get<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, Option<Entry>>;

    /// The live entries under `keys`, in order, in one consistent view where the backend can.
    fn get_many<'a>(&'a self, ns: &'a str, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Entry>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(ns, key).await?);
            }
            Ok(out)
        })
    }

    /// Stores `entry` under `key`, replacing what was there. Resolves once the write is as
    /// durable as the backend can make it.
    fn put<'a>(&'a self, ns: &'a str, key: &'a str, entry: Entry) -> KvFuture<'a, ()>;

    /// Removes `key`; removing an absent key succeeds.
    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, ()>;

    /// Live keys matching `query`, in byte order.
    fn list<'a>(&'a self, ns: &'a str, query: &'a ListQuery) -> KvFuture<'a, ListPage>;

    /// The clock expirations are measured against.
    fn clock(&self) -> Arc<dyn Clock>;

    /// Whether `get` and `get_many` always complete on their first poll (local backends). Lets
    /// the JavaScript adapter read through a synchronous op, which costs far less than an
    /// async one on the quickjs engine.
    fn immediate_reads(&self) -> bool {
        false
    }
}

/// Polls a future once; `Some` if it completed. For backends with
/// [`KvBackend::immediate_reads`].
pub(crate) fn poll_once<T>(mut future: KvFuture<'_, T>) -> Option<Result<T, KvError>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    }
}
