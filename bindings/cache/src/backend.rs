//! The engine-free storage trait every cache backend implements, and what crosses it.
//!
//! Callers (the JavaScript ops, later a wasm host) go through [`crate::AppCache`], which applies
//! the HTTP rules ([`crate::policy`], [`crate::answer`]) first; a backend only keeps entries,
//! hides expired ones and keeps within its byte bounds by evicting the least recently used.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::CacheError;

/// The future a backend method returns.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CacheError>> + Send + 'a>>;

/// Where an entry lives: the app, which of its caches, the request's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// The app the entry belongs to: no other app's calls can name it.
    pub app: Arc<str>,
    /// The cache: `""` for `caches.default`, `"=" + name` for `caches.open(name)`.
    pub cache: Arc<str>,
    /// The request's cache key (`request.cf.cacheKey`, else its URL).
    pub url: String,
}

impl EntryKey {
    /// Bytes the key takes, counted against the bounds.
    pub fn size(&self) -> u64 {
        (self.app.len() + self.cache.len() + self.url.len()) as u64
    }
}

/// A stored response.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Its status (answered with the status's standard reason phrase, as Workers' cache does,
    /// whatever text the stored response had).
    pub status: u16,
    /// Its headers, as stored ([`crate::policy::Storable::headers`]).
    pub headers: Vec<(String, String)>,
    /// Its body.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub stored_at: u64,
    /// When it stops being fresh, in milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// Its `Age` when stored, in seconds.
    pub age: u64,
}

impl Entry {
    /// Bytes the entry takes (body and headers), counted against the bounds.
    pub fn size(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        (self.body.len() + headers) as u64
    }
}

/// How many entries a backend holds and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entries held (expired ones not yet removed included).
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Entries removed to stay within the bounds since the backend opened.
    pub evicted: u64,
}

/// Storage for cached responses. Keys of different apps and caches never meet.
pub trait CacheBackend: Send + Sync + 'static {
    /// The entry under `key` if it is fresh at `now` (ms since the epoch); a hit counts as a
    /// use for eviction.
    fn get<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, Option<Entry>>;

    /// Stores `entry` under `key`, replacing what was there, evicting the least recently used
    /// entries of the app (then of the node) past the bounds. An entry larger than a bound is
    /// not stored (`Ok(false)`).
    fn put<'a>(&'a self, key: EntryKey, entry: Entry) -> CacheFuture<'a, bool>;

    /// Removes `key`; whether there was a fresh entry.
    fn delete<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, bool>;

    /// Removes every entry of an app not in `apps` (the apps the node serves now): a name
    /// the node no longer serves may be taken by another tenant, who must not find them.
    fn retain_apps(&self, apps: &[Arc<str>]);

    /// What the backend holds now.
    fn usage(&self) -> Usage;
}
