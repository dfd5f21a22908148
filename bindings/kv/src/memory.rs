//! A backend in process memory: for tests, and for nodes that want no state on disk.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use crate::backend::{Entry, KeyInfo, KvBackend, KvFuture, ListPage, ListQuery};
use crate::clock::{Clock, SystemClock};
use crate::error::KvError;

/// Namespaces in a `BTreeMap` keyed by (namespace, key), so keys list in byte order.
pub struct MemoryBackend {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
    clock: Arc<dyn Clock>,
}

impl MemoryBackend {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    /// Drops every expired entry; returns how many.
    pub fn purge(&self) -> usize {
        let now = self.clock.now_secs();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.retain(|_, e| crate::live(e.expiration, now));
        before - entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl KvBackend for MemoryBackend {
    fn get<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, Option<Entry>> {
        let now = self.clock.now_secs();
        let found = self
            .lock()
            .get(&(ns.to_string(), key.to_string()))
            .filter(|e| crate::live(e.expiration, now))
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn put<'a>(&'a self, ns: &'a str, key: &'a str, entry: Entry) -> KvFuture<'a, ()> {
        self.lock().insert((ns.to_string(), key.to_string()), entry);
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        self.lock().remove(&(ns.to_string(), key.to_string()));
        Box::pin(std::future::ready(Ok(())))
    }

    fn list<'a>(&'a self, ns: &'a str, query: &'a ListQuery) -> KvFuture<'a, ListPage> {
        let now = self.clock.now_secs();
        let entries = self.lock();
        let start = match &query.start_after {
            Some(after) if after.as_str() >= query.prefix.as_str() => {
                Bound::Excluded((ns.to_string(), after.clone()))
            }
            _ => Bound::Included((ns.to_string(), query.prefix.clone())),
        };
        let mut page = ListPage::default();
        let live = entries
            .range((start, Bound::Unbounded))
            .take_while(|((n, k), _)| n == ns && k.starts_with(&query.prefix))
            .filter(|(_, e)| crate::live(e.expiration, now));
        for ((_, name), e) in live {
            if page.keys.len() == query.limit {
                page.more = true;
                break;
            }
            page.keys.push(KeyInfo {
                name: name.clone(),
                expiration: e.expiration,
                metadata: e.metadata.clone(),
            });
        }
        drop(entries);
        Box::pin(std::future::ready(Ok::<_, KvError>(page)))
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn immediate_reads(&self) -> bool {
        true
    }
}
