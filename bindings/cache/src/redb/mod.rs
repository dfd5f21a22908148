//! [`RedbBackend`]: the node's cache in one redb file (`cache.redb` in the data directory).
//!
//! Reads run on the caller's thread in a read transaction (they never wait for writes). Writes
//! go to one writer thread ([`writer`]), which applies whatever has queued up in one synced
//! transaction (group commit), so what a put or delete resolved survives a crash. What the file holds is indexed in memory
//! ([`crate::index`]) when it opens, so the byte bounds and least-recently-used eviction need no
//! scan of the file.

mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::backend::{CacheBackend, CacheFuture, Entry, EntryKey, Usage};
use crate::error::CacheError;
use crate::index::{Bounds, Index, charge};

/// Each entry's status, headers and times (JSON of [`Record`]), by (app, cache, key).
const META: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("meta");
/// Each entry's body, by (app, cache, key).
const BODY: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("body");

/// What [`META`] holds for an entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    entry: Entry,
    body_len: u64,
}

/// The node's cache in a redb file.
pub struct RedbBackend {
    db: Arc<Database>,
    index: Arc<Mutex<Index>>,
    writer: Mutex<Option<mpsc::Sender<writer::Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

impl RedbBackend {
    /// The file a node's cache lives in, in its data directory.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join("cache.redb")
    }

    /// Opens (or creates) the cache at `path`, within `bounds`: what it holds past them, or
    /// expired, is removed now.
    pub fn open(path: &Path, bounds: Bounds) -> Result<Self, edge_binding::StoreError> {
        let failed = |e: &dyn std::fmt::Display| edge_binding::StoreError::failed(path, e);
        let db = edge_binding::open_redb(path)?;
        {
            let txn = db.begin_write().map_err(|e| failed(&e))?;
            txn.open_table(META).map_err(|e| failed(&e))?;
            txn.open_table(BODY).map_err(|e| failed(&e))?;
            txn.commit().map_err(|e| failed(&e))?;
        }
        let mut index = Index::new(bounds);
        rebuild(&db, &mut index, crate::now_ms()).map_err(|e| failed(&e))?;
        let db = Arc::new(db);
        let index = Arc::new(Mutex::new(index));
        let (tx, rx) = mpsc::channel();
        let writer_thread = {
            let (db, index) = (db.clone(), index.clone());
            std::thread::Builder::new()
                .name("cache-writer".into())
                .spawn(move || writer::run(&db, &index, rx))
                .map_err(|e| failed(&format!("cannot start the cache writer: {e}")))?
        };
        Ok(Self {
            db,
            index,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(writer_thread)),
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, job: writer::Job) -> Result<(), CacheError> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        writer
            .as_ref()
            .ok_or(CacheError::Closed)?
            .send(job)
            .map_err(|_| CacheError::Closed)
    }

    fn read(&self, key: &EntryKey, now: u64) -> Result<Option<Entry>, CacheError> {
        let txn = self.db.begin_read()?;
        let k = (&*key.app, &*key.cache, key.url.as_str());
        let Some(record) = txn.open_table(META)?.get(k)? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<Record>(record.value()) else {
            return Ok(None);
        };
        if record.entry.expires_at <= now {
            return Ok(None);
        }
        let Some(body) = txn.open_table(BODY)?.get(k)? else {
            return Ok(None);
        };
        let mut entry = record.entry;
        entry.body = body.value().to_vec();
        Ok(Some(entry))
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes `index` what the file holds (oldest first, so eviction order survives a reopen),
/// removing from the file what is expired at `now`, unreadable or past the bounds.
pub(super) fn rebuild(db: &Database, index: &mut Index, now: u64) -> Result<(), CacheError> {
    index.clear();
    let mut records = Vec::new();
    let mut gone = Vec::new();
    {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        for row in meta.iter()? {
            let (key, value) = row?;
            let (app, cache, url) = key.value();
            let key = EntryKey {
                app: app.into(),
                cache: cache.into(),
                url: url.to_string(),
            };
            match serde_json::from_slice::<Record>(value.value()) {
                Ok(r) => records.push((key, r)),
                // Not ours to read: dropped rather than refusing to start.
                Err(_) => gone.push(key),
            }
        }
    }
    records.sort_by_key(|(_, r)| r.entry.stored_at);
    for (key, r) in records {
        let size = charge(&key, r.entry.size() + r.body_len);
        if r.entry.expires_at <= now || !index.fits(size) {
            gone.push(key);
            continue;
        }
        let inserted = index.insert(key.clone(), size, r.entry.expires_at, now);
        gone.extend(inserted.gone);
        if !inserted.stored {
            gone.push(key);
        }
    }
    if !gone.is_empty() {
        let txn = db.begin_write()?;
        writer::remove(&txn, &gone)?;
        txn.commit()?;
    }
    Ok(())
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // The writer finishes what is queued and stops when its queue closes; waiting for it lets go
        // of the file, so it can be opened again at once.
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl CacheBackend for RedbBackend {
    fn get<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, Option<Entry>> {
        let found = self.read(key, now);
        if let Ok(Some(_)) = &found {
            self.lock_index().touch(key);
        }
        Box::pin(std::future::ready(found))
    }

    fn put<'a>(&'a self, key: EntryKey, entry: Entry) -> CacheFuture<'a, bool> {
        let (done, answer) = oneshot::channel();
        let sent = self.send(writer::Job::Put { key, entry, done });
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| CacheError::Closed)?
        })
    }

    fn delete<'a>(&'a self, key: &'a EntryKey, now: u64) -> CacheFuture<'a, bool> {
        let (done, answer) = oneshot::channel();
        let sent = self.send(writer::Job::Delete {
            key: key.clone(),
            now,
            done,
        });
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| CacheError::Closed)?
        })
    }

    fn retain_apps(&self, apps: &[Arc<str>]) {
        // Fire and forget: the writer removes them in its next batch.
        let _ = self.send(writer::Job::Retain(apps.to_vec()));
    }

    fn usage(&self) -> Usage {
        self.lock_index().usage()
    }
}
