//! [`Cache`]: the Cache API as a node hosts it. It is ambient (every app has `caches`, no
//! `edge.toml` key declares it); the node keeps one `cache.redb`, and each app is handed an
//! [`AppCache`] over it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_binding::{
    AppInfo, Binding, ConfigIssue, Declared, MetricKind, MetricSample, NodeStore, Section,
    StoreError,
};

use crate::app::{AppCache, Counters};
use crate::backend::{CacheBackend, CacheFuture, Entry, EntryKey, Usage};
use crate::error::CacheError;
use crate::index::Bounds;
use crate::memory::MemoryBackend;
use crate::redb::RedbBackend;

/// The Cache API, with the operator's bounds for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cache {
    /// What the node's cache may hold, in all and per app.
    pub bounds: Bounds,
}

/// A node's cache storage.
pub struct CacheNode {
    backend: Arc<dyn CacheBackend>,
    counters: Arc<Counters>,
}

/// No entries: the Cache API is not declared in `edge.toml`.
#[derive(Debug)]
pub enum Never {}

impl Binding for Cache {
    type Entry = Never;
    type Node = CacheNode;
    type App = AppCache;

    fn kind(&self) -> &'static str {
        "cache"
    }

    fn config_key(&self) -> Option<&'static str> {
        None
    }

    fn parse(&self, _section: &Section<'_>) -> Result<Vec<Declared<Never>>, ConfigIssue> {
        Ok(Vec::new())
    }

    fn open(&self, store: &NodeStore) -> Result<CacheNode, StoreError> {
        // Every app has the Cache API, few use it: the file is opened on first use, so an app
        // that never touches `caches` never holds (or waits for) the node's cache file.
        Ok(CacheNode {
            backend: Arc::new(Lazy {
                store: store.clone(),
                bounds: self.bounds,
                state: Mutex::default(),
            }),
            counters: Arc::default(),
        })
    }

    fn configure(&self, node: &Arc<CacheNode>, app: &AppInfo<'_>, _entries: &[&Never]) -> AppCache {
        // Bodies waiting to be stored live outside the heap: at most one memory limit of them.
        AppCache::new(
            app.name,
            node.backend.clone(),
            node.counters.clone(),
            app.memory_limit,
        )
    }

    fn attach(
        &self,
        node: &Arc<CacheNode>,
        apps: &[(&str, Vec<&Never>)],
        _host: &Arc<dyn edge_binding::Host>,
    ) {
        // An app the node no longer serves loses its entries: its name may be another
        // tenant's next.
        node.backend.retain_apps(
            &apps
                .iter()
                .map(|(name, _)| Arc::from(*name))
                .collect::<Vec<_>>(),
        );
    }

    fn metrics(&self, node: &Arc<CacheNode>) -> Vec<MetricSample> {
        let usage = node.backend.usage();
        let c = &node.counters;
        let counter = |name, help, labels: Vec<(&'static str, String)>, value: u64| MetricSample {
            name,
            help,
            kind: MetricKind::Counter,
            labels,
            value: value as f64,
        };
        let gauge = |name, help, value: u64| MetricSample {
            name,
            help,
            kind: MetricKind::Gauge,
            labels: Vec::new(),
            value: value as f64,
        };
        let lookups = "Cache API match calls, by outcome (hit, miss).";
        let puts = "Cache API put calls, by outcome (stored; skipped: not cacheable or too large).";
        vec![
            gauge(
                "edge_cache_entries",
                "Entries in the node's cache.",
                usage.entries,
            ),
            gauge(
                "edge_cache_bytes",
                "Bytes of the entries in the node's cache.",
                usage.bytes,
            ),
            counter(
                "edge_cache_evictions",
                "Entries evicted to keep an app or the node within its cache bound.",
                Vec::new(),
                usage.evicted,
            ),
            counter(
                "edge_cache_lookups",
                lookups,
                vec![("outcome", "hit".into())],
                c.hits.load(Ordering::Relaxed),
            ),
            counter(
                "edge_cache_lookups",
                lookups,
                vec![("outcome", "miss".into())],
                c.misses.load(Ordering::Relaxed),
            ),
            counter(
                "edge_cache_puts",
                puts,
                vec![("outcome", "stored".into())],
                c.stored.load(Ordering::Relaxed),
            ),
            counter(
                "edge_cache_puts",
                puts,
                vec![("outcome", "skipped".into())],
                c.skipped.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The node's backend, opened the first time an app uses the cache: redb in the node's data
/// directory, else memory.
struct Lazy {
    store: NodeStore,
    bounds: Bounds,
    state: Mutex<LazyState>,
}

#[derive(Default)]
struct LazyState {
    backend: Option<Arc<dyn CacheBackend>>,
    /// The last failure to open, and when: tried again only after [`RETRY_OPEN`].
    failed: Option<(Instant, String)>,
    /// The apps the node serves, once told: others' entries are removed when the file opens.
    served: Option<Vec<Arc<str>>>,
}

/// How long after a failure to open the file the next use tries again (another process may
/// have let go of it); in between, cache calls fail at once with the same error.
const RETRY_OPEN: Duration = Duration::from_secs(5);

impl Lazy {
    /// The backend, opening it if it is not open yet.
    fn backend(&self) -> Result<Arc<dyn CacheBackend>, CacheError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(backend) = &state.backend {
            return Ok(backend.clone());
        }
        if let Some((at, error)) = &state.failed
            && at.elapsed() < RETRY_OPEN
        {
            return Err(CacheError::Storage(error.clone()));
        }
        let backend: Arc<dyn CacheBackend> = match self.store.dir() {
            Some(dir) => {
                let path = RedbBackend::file_in(dir);
                match RedbBackend::open(&path, self.bounds) {
                    Ok(backend) => {
                        tracing::info!(path = %path.display(), "cache store open");
                        Arc::new(backend)
                    }
                    Err(e) => {
                        tracing::error!(
                            "cannot open the cache store (tried again in {} s): {e}",
                            RETRY_OPEN.as_secs()
                        );
                        state.failed = Some((Instant::now(), e.to_string()));
                        return Err(CacheError::Storage(e.to_string()));
                    }
                }
            }
            None => Arc::new(MemoryBackend::new(self.bounds)),
        };
        if let Some(served) = &state.served {
            backend.retain_apps(served);
        }
        state.failed = None;
        state.backend = Some(backend.clone());
        Ok(backend)
    }

    /// Learns which apps the node serves; removes the others' entries if the file is open.
    fn serve(&self, apps: Vec<Arc<str>>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(backend) = &state.backend {
            backend.retain_apps(&apps);
        }
        state.served = Some(apps);
    }
}

impl CacheBackend for Lazy {
    fn get<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, Option<Entry>> {
        Box::pin(async move { self.backend()?.get(key, now).await })
    }

    fn put<'a>(&'a self, key: EntryKey, entry: Entry) -> CacheFuture<'a, bool> {
        Box::pin(async move { self.backend()?.put(key, entry).await })
    }

    fn delete<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, bool> {
        Box::pin(async move { self.backend()?.delete(key, now).await })
    }

    fn retain_apps(&self, apps: &[Arc<str>]) {
        self.serve(apps.to_vec());
    }

    fn usage(&self) -> Usage {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .backend
            .as_ref()
            .map(|b| b.usage())
            .unwrap_or_default()
    }
}
