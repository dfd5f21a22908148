//! [`MemoryBackend`]: entries in memory, gone with the process (`edge check`, tests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{CacheBackend, CacheFuture, Entry, EntryKey, Usage};
use crate::index::{Bounds, Index, charge};

/// A cache held in memory, within `bounds`.
pub struct MemoryBackend {
    inner: Mutex<(Index, HashMap<EntryKey, Entry>)>,
}

impl MemoryBackend {
    /// An empty cache within `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            inner: Mutex::new((Index::new(bounds), HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Index, HashMap<EntryKey, Entry>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CacheBackend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, Option<Entry>> {
        let mut inner = self.lock();
        let (index, entries) = &mut *inner;
        let found = entries.get(key).filter(|e| e.expires_at > now).cloned();
        if found.is_some() {
            index.touch(key);
        }
        Box::pin(std::future::ready(Ok(found)))
    }

    fn put<'a>(&'a self, key: EntryKey, entry: Entry) -> CacheFuture<'a, bool> {
        let mut inner = self.lock();
        let (index, entries) = &mut *inner;
        let size = charge(&key, entry.size());
        if !index.fits(size) {
            return Box::pin(std::future::ready(Ok(false)));
        }
        let inserted = index.insert(key.clone(), size, entry.expires_at, entry.stored_at);
        for gone in &inserted.gone {
            entries.remove(gone);
        }
        if inserted.stored {
            entries.insert(key, entry);
        }
        Box::pin(std::future::ready(Ok(inserted.stored)))
    }

    fn delete<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, bool> {
        let mut inner = self.lock();
        let (index, entries) = &mut *inner;
        index.remove(key);
        let fresh = entries.remove(key).is_some_and(|e| e.expires_at > now);
        Box::pin(std::future::ready(Ok(fresh)))
    }

    fn retain_apps(&self, apps: &[Arc<str>]) {
        let mut inner = self.lock();
        let (index, entries) = &mut *inner;
        for key in index.others(apps) {
            index.remove(&key);
            entries.remove(&key);
        }
    }

    fn usage(&self) -> Usage {
        self.lock().0.usage()
    }
}
