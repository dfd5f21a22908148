//! The redb backend: every namespace of a node in one redb file.
//!
//! Reads run on the caller's thread in their own read transaction (redb readers never wait for
//! the writer), so a `get` sees every write that resolved before it. Writes go to the group
//! commit thread in [`writer`].

mod record;
mod writer;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::oneshot;

pub use writer::WriterStats;

use crate::backend::{Entry, KeyInfo, KvBackend, KvFuture, ListPage, ListQuery};
use crate::clock::{Clock, SystemClock};
use crate::error::{KvError, KvOp};

/// (namespace, key) → record (see `record`).
const ENTRIES: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("kv_entries");
/// (expiration, namespace, key) → (): what to purge, oldest first.
const EXPIRY: TableDefinition<(u64, &str, &[u8]), ()> = TableDefinition::new("kv_expiry");
/// namespace → bytes stored (keys plus records), for the quota.
const USAGE: TableDefinition<&str, u64> = TableDefinition::new("kv_usage");

/// How often expired entries are purged by default.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Why the store could not be opened: the node store's error (a file another process holds,
/// or one that cannot be opened), the same for every binding.
pub type OpenError = edge_binding::StoreError;

/// How to open a [`RedbBackend`].
#[derive(Clone)]
pub struct RedbOptions {
    /// What expirations are measured against.
    pub clock: Arc<dyn Clock>,
    /// How often expired entries are purged from the file.
    pub purge_interval: Duration,
    /// Most bytes (keys plus stored records) one namespace may hold; `None` for no limit. A
    /// write past it fails with [`KvError::Quota`]; deletes and shrinking writes always pass.
    pub namespace_quota: Option<u64>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            purge_interval: DEFAULT_PURGE_INTERVAL,
            namespace_quota: None,
        }
    }
}

/// KV namespaces in one redb file.
pub struct RedbBackend {
    db: Arc<Database>,
    path: PathBuf,
    writer: Mutex<Option<Sender<writer::Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    clock: Arc<dyn Clock>,
    stats: Arc<WriterStats>,
}

impl RedbBackend {
    /// The file a data directory keeps KV in.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join("kv.redb")
    }

    /// Opens (creating if needed) the store in `path` and starts its writer thread.
    pub fn open(path: &Path, options: RedbOptions) -> Result<Self, OpenError> {
        let failed = |message: String| OpenError::failed(path, message);
        // Tenants' data: readable by the node's user only (redb would create it 0644).
        let db = edge_binding::open_redb(path)?;
        // Create the tables so readers never meet a missing one.
        let txn = db.begin_write().map_err(|e| failed(e.to_string()))?;
        let counted = {
            use redb::TableHandle;
            txn.list_tables()
                .map_err(|e| failed(e.to_string()))?
                .any(|t| t.name() == USAGE.name())
        };
        txn.open_table(ENTRIES).map_err(|e| failed(e.to_string()))?;
        txn.open_table(EXPIRY).map_err(|e| failed(e.to_string()))?;
        txn.commit().map_err(|e| failed(e.to_string()))?;
        if !counted {
            // A new file, or one written before usage was kept: count what is there.
            writer::count_usage(&db).map_err(|e| failed(e.to_string()))?;
        }

        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let writer_thread = {
            let (db, clock, stats) = (db.clone(), options.clock.clone(), stats.clone());
            std::thread::Builder::new()
                .name("kv-writer".into())
                .spawn(move || {
                    writer::run(
                        db,
                        rx,
                        clock,
                        options.purge_interval,
                        options.namespace_quota,
                        stats,
                    )
                })
                .map_err(|e| failed(format!("cannot start the writer thread: {e}")))?
        };
        Ok(Self {
            db,
            path: path.to_path_buf(),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(writer_thread)),
            clock: options.clock,
            stats,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Purges expired entries now (the writer also does this on its own schedule).
    pub fn purge_now(&self) -> Result<usize, KvError> {
        writer::purge(&self.db, self.clock.now_secs())
            .map_err(|e| KvError::storage(KvOp::Delete, e))
    }

    /// Bytes namespace `ns` holds (keys plus stored records, expired ones until purged).
    pub fn usage(&self, ns: &str) -> Result<u64, KvError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| KvError::storage(KvOp::List, e))?;
        let table = txn
            .open_table(USAGE)
            .map_err(|e| KvError::storage(KvOp::List, e))?;
        let used = table
            .get(ns)
            .map_err(|e| KvError::storage(KvOp::List, e))?
            .map_or(0, |g| g.value());
        Ok(used)
    }

    /// Rows in the file, expired or not: (entries, expiry index rows). For tests of purging.
    pub fn raw_counts(&self) -> Result<(u64, u64), KvError> {
        use redb::ReadableTableMetadata;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| KvError::storage(KvOp::List, e))?;
        let n = |r: Result<u64, redb::StorageError>| r.map_err(|e| KvError::storage(KvOp::List, e));
        let entries = txn
            .open_table(ENTRIES)
            .map_err(|e| KvError::storage(KvOp::List, e))?;
        let expiry = txn
            .open_table(EXPIRY)
            .map_err(|e| KvError::storage(KvOp::List, e))?;
        Ok((n(entries.len())?, n(expiry.len())?))
    }

    fn write(&self, op: KvOp, ns: &str, key: &str, entry: Option<Entry>) -> KvFuture<'static, ()> {
        let (done, result) = oneshot::channel();
        let job = writer::Job {
            ns: ns.to_string(),
            key: key.to_string(),
            entry,
            done,
        };
        let sent = match &*self.writer.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(KvError::Closed { op });
            }
            result.await.unwrap_or(Err(KvError::Closed { op }))
        })
    }

    fn read<T>(
        &self,
        op: KvOp,
        f: impl FnOnce(
            &redb::ReadOnlyTable<(&'static str, &'static [u8]), &'static [u8]>,
        ) -> Result<T, redb::StorageError>,
    ) -> Result<T, KvError> {
        let txn = self.db.begin_read().map_err(|e| KvError::storage(op, e))?;
        let table = txn
            .open_table(ENTRIES)
            .map_err(|e| KvError::storage(op, e))?;
        f(&table).map_err(|e| KvError::storage(op, e))
    }

    fn lookup(
        table: &redb::ReadOnlyTable<(&'static str, &'static [u8]), &'static [u8]>,
        ns: &str,
        key: &str,
        now: u64,
    ) -> Result<Option<Entry>, redb::StorageError> {
        let Some(guard) = table.get((ns, key.as_bytes()))? else {
            return Ok(None);
        };
        let parts = record::decode(guard.value())
            .ok_or_else(|| redb::StorageError::Corrupted(format!("kv record for {key:?}")))?;
        Ok(crate::live(parts.expiration, now).then(|| parts.to_entry()))
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; waiting for it
        // releases the file, so it can be opened again at once.
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl KvBackend for RedbBackend {
    fn get<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, Option<Entry>> {
        let now = self.clock.now_secs();
        let found = self.read(KvOp::Get, |t| Self::lookup(t, ns, key, now));
        Box::pin(std::future::ready(found))
    }

    fn get_many<'a>(&'a self, ns: &'a str, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Entry>>> {
        let now = self.clock.now_secs();
        let found = self.read(KvOp::Get, |t| {
            keys.iter().map(|k| Self::lookup(t, ns, k, now)).collect()
        });
        Box::pin(std::future::ready(found))
    }

    fn put<'a>(&'a self, ns: &'a str, key: &'a str, entry: Entry) -> KvFuture<'a, ()> {
        self.write(KvOp::Put, ns, key, Some(entry))
    }

    fn delete<'a>(&'a self, ns: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        self.write(KvOp::Delete, ns, key, None)
    }

    fn list<'a>(&'a self, ns: &'a str, query: &'a ListQuery) -> KvFuture<'a, ListPage> {
        let now = self.clock.now_secs();
        let page = self.read(KvOp::List, |t| {
            let prefix = query.prefix.as_bytes();
            let start = match &query.start_after {
                Some(after) if after.as_str() >= query.prefix.as_str() => {
                    Bound::Excluded((ns, after.as_bytes()))
                }
                _ => Bound::Included((ns, prefix)),
            };
            let mut page = ListPage::default();
            for row in t.range::<(&str, &[u8])>((start, Bound::Unbounded))? {
                let (k, v) = row?;
                let (row_ns, key) = k.value();
                if row_ns != ns || !key.starts_with(prefix) {
                    break;
                }
                let parts = record::decode(v.value())
                    .ok_or_else(|| redb::StorageError::Corrupted("kv record".into()))?;
                if !crate::live(parts.expiration, now) {
                    continue;
                }
                if page.keys.len() == query.limit {
                    page.more = true;
                    break;
                }
                page.keys.push(KeyInfo {
                    name: String::from_utf8_lossy(key).into_owned(),
                    expiration: parts.expiration,
                    metadata: parts.metadata_string(),
                });
            }
            Ok(page)
        });
        Box::pin(std::future::ready(page))
    }

    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn immediate_reads(&self) -> bool {
        true
    }
}
