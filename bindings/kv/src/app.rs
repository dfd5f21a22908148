//! [`KvBindings`]: what one app is handed, whatever runs its code (the JavaScript ops, the
//! wasm host): its namespaces and a bound on its writes awaiting commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::KvError;
use crate::namespace::Namespace;

/// The namespaces one app binds, in `edge.toml` order (a binding is an index into them, so
/// code cannot name another app's namespace). Clones (an app's isolates) share one count of
/// write bytes awaiting commit.
#[derive(Clone, Default)]
pub struct KvBindings {
    namespaces: Vec<Namespace>,
    backlog: Backlog,
}

impl KvBindings {
    /// Bindings to `namespaces`, with no bound on writes awaiting commit.
    pub fn new(namespaces: Vec<Namespace>) -> Self {
        Self {
            namespaces,
            backlog: Backlog::default(),
        }
    }

    /// Bounds the bytes of `put` values awaiting commit (across the app's isolates) to
    /// `limit`: past it a `put` fails at once with [`KvError::Backlog`] (a single put always
    /// goes through when nothing is waiting).
    pub fn with_backlog_limit(mut self, limit: u64) -> Self {
        self.backlog = Backlog {
            pending: Arc::new(AtomicU64::new(0)),
            limit,
        };
        self
    }

    /// The namespace at `index`.
    pub fn namespace(&self, index: u32) -> Result<&Namespace, KvError> {
        self.namespaces
            .get(index as usize)
            .ok_or(KvError::NotBound(index))
    }

    /// The namespace at `index`, with `bytes` more counted as awaiting commit until the
    /// returned guard drops.
    pub fn for_write(&self, index: u32, bytes: u64) -> Result<(Namespace, Reserved), KvError> {
        let ns = self.namespace(index)?.clone();
        Ok((ns, self.backlog.reserve(bytes)?))
    }
}

/// Bytes of writes awaiting commit, and how many may wait.
#[derive(Clone)]
struct Backlog {
    pending: Arc<AtomicU64>,
    limit: u64,
}

impl Default for Backlog {
    fn default() -> Self {
        Self {
            pending: Arc::new(AtomicU64::new(0)),
            limit: u64::MAX,
        }
    }
}

impl Backlog {
    /// Counts `bytes` as waiting until the returned guard drops.
    fn reserve(&self, bytes: u64) -> Result<Reserved, KvError> {
        let limit = self.limit;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
                (pending == 0 || pending.saturating_add(bytes) <= limit)
                    .then(|| pending.saturating_add(bytes))
            })
            .map_err(|pending| KvError::Backlog { pending, limit })?;
        Ok(Reserved {
            pending: self.pending.clone(),
            bytes,
        })
    }
}

/// Write bytes counted as awaiting commit; uncounted on drop.
pub struct Reserved {
    pending: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.pending.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}
