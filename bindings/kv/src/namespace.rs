//! One namespace as an app sees it: Workers' rules checked, then the backend called with the
//! namespace id. Everything that reaches KV (JavaScript, the admin endpoint, the CLI) goes
//! through here, so the rules hold the same everywhere.

use std::sync::Arc;

use crate::backend::{Entry, KeyInfo, KvBackend, ListQuery};
use crate::error::{KvError, KvOp};
use crate::{cursor, rules};

/// A handle on one namespace of a backend. Cheap to clone.
#[derive(Clone)]
pub struct Namespace {
    id: Arc<str>,
    backend: Arc<dyn KvBackend>,
    ops: Arc<OpCounts>,
}

/// Operations made on a namespace, by kind (for the node's metrics).
#[derive(Debug, Default)]
pub struct OpCounts {
    counts: [std::sync::atomic::AtomicU64; 5],
}

impl OpCounts {
    /// The kinds counted, in the order of [`OpCounts::snapshot`].
    pub const KINDS: [&'static str; 5] = ["get", "get_bulk", "put", "delete", "list"];

    fn add(&self, kind: usize) {
        self.counts[kind].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counts now, in the order of [`OpCounts::KINDS`].
    pub fn snapshot(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.counts[i].load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// `put`'s options, as given (checked by [`Namespace::put`]).
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// Absolute expiration, seconds since the Unix epoch.
    pub expiration: Option<f64>,
    /// Expiration relative to now, in seconds.
    pub expiration_ttl: Option<f64>,
    /// Metadata as serialized JSON.
    pub metadata: Option<String>,
}

/// `list`'s options, as given.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// At most this many keys (default and maximum 1000).
    pub limit: Option<f64>,
    /// Continue after a previous page.
    pub cursor: Option<String>,
}

/// One page of `list`, shaped as Workers returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResult {
    /// The keys, in byte order.
    pub keys: Vec<KeyInfo>,
    /// No more keys match.
    pub list_complete: bool,
    /// Where the next page starts; `None` when complete.
    pub cursor: Option<String>,
}

impl Namespace {
    /// The namespace `id` of `backend`.
    pub fn new(backend: Arc<dyn KvBackend>, id: impl Into<Arc<str>>) -> Self {
        Self::counted(backend, id, Arc::default())
    }

    /// The namespace `id` of `backend`, its operations counted in `ops`.
    pub fn counted(
        backend: Arc<dyn KvBackend>,
        id: impl Into<Arc<str>>,
        ops: Arc<OpCounts>,
    ) -> Self {
        Self {
            id: id.into(),
            backend,
            ops,
        }
    }

    /// The namespace id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The live entry under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        self.ops.add(0);
        rules::check_key(KvOp::Get, key)?;
        self.backend.get(&self.id, key).await
    }

    /// Whether [`Namespace::get_now`] answers (the backend reads without waiting).
    pub fn immediate_reads(&self) -> bool {
        self.backend.immediate_reads()
    }

    /// `get` without awaiting, for backends with immediate reads; `None` if the backend would
    /// have to wait.
    pub fn get_now(&self, key: &str) -> Option<Result<Option<Entry>, KvError>> {
        self.ops.add(0);
        if let Err(e) = rules::check_key(KvOp::Get, key) {
            return Some(Err(e));
        }
        crate::backend::poll_once(self.backend.get(&self.id, key))
    }

    /// The live entries under `keys` (1–100), in order.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, KvError> {
        self.ops.add(1);
        rules::check_bulk(keys)?;
        self.backend.get_many(&self.id, keys).await
    }

    /// Stores `value` under `key`; resolves once durable.
    pub async fn put(&self, key: &str, value: Vec<u8>, options: PutOptions) -> Result<(), KvError> {
        self.ops.add(2);
        rules::check_key(KvOp::Put, key)?;
        rules::check_value(value.len())?;
        if let Some(meta) = &options.metadata {
            rules::check_metadata(meta)?;
        }
        let now = self.backend.clock().now_secs();
        let expiration = rules::expiration(now, options.expiration, options.expiration_ttl)?;
        let entry = Entry {
            value,
            metadata: options.metadata,
            expiration,
        };
        self.backend.put(&self.id, key, entry).await
    }

    /// Removes `key`; resolves once durable.
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.ops.add(3);
        rules::check_key(KvOp::Delete, key)?;
        self.backend.delete(&self.id, key).await
    }

    /// One page of keys.
    pub async fn list(&self, options: ListOptions) -> Result<ListResult, KvError> {
        self.ops.add(4);
        let limit = rules::list_limit(options.limit)?;
        let start_after = match options.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(cursor::decode(c)?),
        };
        let query = ListQuery {
            prefix: options.prefix.unwrap_or_default(),
            start_after,
            limit,
        };
        let page = self.backend.list(&self.id, &query).await?;
        let cursor = match (page.more, page.keys.last()) {
            (true, Some(last)) => Some(cursor::encode(&last.name)),
            _ => None,
        };
        Ok(ListResult {
            list_complete: cursor.is_none(),
            cursor,
            keys: page.keys,
        })
    }
}
