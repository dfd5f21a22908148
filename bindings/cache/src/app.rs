//! [`AppCache`]: what one app is handed, whatever runs its code: its own entries (every key
//! carries the app's name, so no call can reach another app's), the HTTP rules, and a bound on
//! the body bytes it has waiting to be stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::answer::{Answer, Conditions, answer};
use crate::backend::{CacheBackend, Entry, EntryKey};
use crate::error::CacheError;
use crate::policy::{self, NotStored, Storable};

/// Most body bytes one entry may have: past it, `put` stores nothing (as Workers' cache
/// refuses what is over its size limit, without an error).
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// Operations counted for the node's metrics.
#[derive(Default, Debug)]
pub struct Counters {
    /// `match` calls that found a fresh entry.
    pub hits: AtomicU64,
    /// `match` calls that did not.
    pub misses: AtomicU64,
    /// `put` calls that stored.
    pub stored: AtomicU64,
    /// `put` calls that did not (the response was not cacheable, or too large).
    pub skipped: AtomicU64,
}

/// One app's Cache API. Clones (the app's isolates) share the count of bytes waiting.
#[derive(Clone)]
pub struct AppCache {
    app: Arc<str>,
    backend: Arc<dyn CacheBackend>,
    counters: Arc<Counters>,
    pending: Arc<AtomicU64>,
    pending_limit: u64,
}

/// Body bytes counted as waiting to be stored; uncounted on drop.
pub struct Pending {
    pending: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.pending.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The cache-name part of a key: `None` for `caches.default`.
fn cache_part(name: Option<&str>) -> Arc<str> {
    match name {
        None => "".into(),
        Some(name) => format!("={name}").into(),
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AppCache {
    /// The app `app`'s cache on `backend`, with at most `pending_limit` body bytes waiting to
    /// be stored (across its isolates: the bytes live outside the engine's heap).
    pub fn new(
        app: &str,
        backend: Arc<dyn CacheBackend>,
        counters: Arc<Counters>,
        pending_limit: u64,
    ) -> Self {
        Self {
            app: app.into(),
            backend,
            counters,
            pending: Arc::new(AtomicU64::new(0)),
            pending_limit,
        }
    }

    /// The key of `url` in the cache `name` (`None`: `caches.default`).
    pub fn key(&self, name: Option<&str>, url: String) -> EntryKey {
        EntryKey {
            app: self.app.clone(),
            cache: cache_part(name),
            url,
        }
    }

    /// `match`: the answer for `key` under the request's `conditions`, if a fresh entry is
    /// there.
    pub async fn lookup(
        &self,
        key: &EntryKey,
        conditions: &Conditions,
    ) -> Result<Option<Answer>, CacheError> {
        let now = now_ms();
        let found = self.backend.get(key, now).await?;
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(found.map(|entry| answer(entry, conditions, now, &boundary())))
    }

    /// Whether a response with `status` and `headers` (to a request with `Authorization` if
    /// `authorized`) would be stored now, and how; with `forced_ttl` (a fetch's `cf.cacheTtl`)
    /// for that long whatever its caching headers say.
    pub fn admit(
        &self,
        status: u16,
        headers: &[(String, String)],
        authorized: bool,
        forced_ttl: Option<u64>,
    ) -> Result<Storable, NotStored> {
        let now = SystemTime::now();
        let decided = match forced_ttl {
            Some(ttl) => policy::decide_forced(headers, ttl, now),
            None => policy::decide(status, headers, authorized, now),
        };
        if decided.is_err() {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
        }
        decided
    }

    /// Counts `bytes` as waiting outside the heap until the returned guard drops; `None` past
    /// [`MAX_ENTRY_BYTES`] or the app's bound.
    pub fn reserve(&self, bytes: u64) -> Option<Pending> {
        let mut pending = Pending {
            pending: self.pending.clone(),
            bytes: 0,
        };
        self.grow(&mut pending, bytes).then_some(pending)
    }

    /// Counts `more` bytes in `pending`; false (nothing counted) if that would take it past
    /// [`MAX_ENTRY_BYTES`] or the app past its bound (then the put stores nothing).
    pub fn grow(&self, pending: &mut Pending, more: u64) -> bool {
        if pending.bytes.saturating_add(more) > MAX_ENTRY_BYTES {
            return false;
        }
        let limit = self.pending_limit;
        let counted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now.saturating_add(more) <= limit).then(|| now + more)
            })
            .is_ok();
        if counted {
            pending.bytes += more;
        }
        counted
    }

    /// Counts a put that stored nothing (its body went past a bound).
    pub fn skipped(&self) {
        self.counters.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// `put`: stores `body` as the response `storable` describes under `key`; whether it was
    /// stored.
    pub async fn store(
        &self,
        key: EntryKey,
        status: u16,
        storable: Storable,
        body: Vec<u8>,
    ) -> Result<bool, CacheError> {
        let now = now_ms();
        let entry = Entry {
            status,
            headers: storable.headers,
            body,
            stored_at: now,
            expires_at: now.saturating_add(storable.ttl.saturating_mul(1000)),
            age: storable.age,
        };
        let stored = self.backend.put(key, entry).await?;
        let counter = if stored {
            &self.counters.stored
        } else {
            &self.counters.skipped
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(stored)
    }

    /// `delete`: removes `key`; whether a fresh entry was there.
    pub async fn delete(&self, key: &EntryKey) -> Result<bool, CacheError> {
        self.backend.delete(key, now_ms()).await
    }
}

/// A multipart boundary unlikely to occur in a body: 128 random bits in hex.
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", random(), random())
}
