//! The cache's writer thread: applies queued puts and deletes, a batch per transaction,
//! committed without a sync; syncs the file at most once a second while writes arrive, and
//! once more when the backend closes.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::{BODY, META, Record};
use crate::backend::{Entry, EntryKey};
use crate::error::CacheError;
use crate::index::Index;

/// How long written data may wait for a sync.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;
/// Stop adding to a batch past this many body bytes.
const MAX_BATCH_BYTES: usize = 64 << 20;

/// A write waiting for the writer.
pub(super) enum Job {
    /// Store an entry; answers whether it was stored.
    Put {
        key: EntryKey,
        entry: Entry,
        done: oneshot::Sender<Result<bool, CacheError>>,
    },
    /// Remove an entry; answers whether a fresh one was there at `now`.
    Delete {
        key: EntryKey,
        now: u64,
        done: oneshot::Sender<Result<bool, CacheError>>,
    },
}

impl Job {
    fn bytes(&self) -> usize {
        match self {
            Job::Put { entry, .. } => entry.body.len(),
            Job::Delete { .. } => 0,
        }
    }
}

/// Runs until every sender is gone.
pub(super) fn run(db: &Database, index: &Mutex<Index>, rx: Receiver<Job>) {
    let mut unsynced: Option<Instant> = None;
    loop {
        let first = match unsynced {
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(since) => match rx.recv_timeout(SYNC_EVERY.saturating_sub(since.elapsed())) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    sync(db);
                    unsynced = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    sync(db);
                    return;
                }
            },
        };
        let mut batch = vec![first];
        let mut bytes = batch[0].bytes();
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.bytes();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        apply(db, index, batch);
        let since = *unsynced.get_or_insert_with(Instant::now);
        if since.elapsed() >= SYNC_EVERY {
            sync(db);
            unsynced = None;
        }
    }
}

/// Makes every commit so far durable.
fn sync(db: &Database) {
    let result = db
        .begin_write()
        .map_err(CacheError::from)
        .and_then(|mut txn| {
            txn.set_durability(Durability::Immediate)
                .map_err(|e| CacheError::Storage(e.to_string()))?;
            txn.commit().map_err(CacheError::from)
        });
    if let Err(e) = result {
        tracing::error!("cache: syncing the file failed: {e}");
    }
}

fn apply(db: &Database, index: &Mutex<Index>, batch: Vec<Job>) {
    let mut answers = Vec::with_capacity(batch.len());
    let result = (|| -> Result<(), CacheError> {
        let mut txn = db.begin_write()?;
        // Not synced one by one: see the module doc. A database shared with other processes
        // cannot skip the sync; then every commit is synced.
        let _ = txn.set_durability(Durability::None);
        let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
        for job in batch {
            match job {
                Job::Put { key, entry, done } => {
                    let stored = put(&txn, &mut index, key, entry)?;
                    answers.push((done, Ok(stored)));
                }
                Job::Delete { key, now, done } => {
                    index.remove(&key);
                    let fresh = delete(&txn, &key, now)?;
                    answers.push((done, Ok(fresh)));
                }
            }
        }
        drop(index);
        txn.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            for (done, answer) in answers {
                let _ = done.send(answer);
            }
        }
        Err(e) => {
            tracing::error!("cache: a write failed: {e}");
            for (done, _) in answers {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

fn put(
    txn: &WriteTransaction,
    index: &mut Index,
    key: EntryKey,
    entry: Entry,
) -> Result<bool, CacheError> {
    let size = entry.size() + key.size();
    if !index.fits(size) {
        return Ok(false);
    }
    let gone = index.insert(key.clone(), size, entry.expires_at, entry.stored_at);
    remove(txn, &gone)?;
    let record = serde_json::to_vec(&Record {
        body_len: entry.body.len() as u64,
        entry: Entry {
            body: Vec::new(),
            ..entry.clone()
        },
    })
    .map_err(|e| CacheError::Storage(e.to_string()))?;
    let k = (&*key.app, &*key.cache, key.url.as_str());
    txn.open_table(META)?.insert(k, record.as_slice())?;
    txn.open_table(BODY)?.insert(k, entry.body.as_slice())?;
    Ok(true)
}

fn delete(txn: &WriteTransaction, key: &EntryKey, now: u64) -> Result<bool, CacheError> {
    let k = (&*key.app, &*key.cache, key.url.as_str());
    let old = txn.open_table(META)?.remove(k)?.map(|g| g.value().to_vec());
    txn.open_table(BODY)?.remove(k)?;
    Ok(old
        .and_then(|r| serde_json::from_slice::<Record>(&r).ok())
        .is_some_and(|r| r.entry.expires_at > now))
}

/// Removes `keys` from the file.
pub(super) fn remove(txn: &WriteTransaction, keys: &[EntryKey]) -> Result<(), redb::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut meta = txn.open_table(META)?;
    let mut body = txn.open_table(BODY)?;
    for key in keys {
        let k = (&*key.app, &*key.cache, key.url.as_str());
        meta.remove(k)?;
        body.remove(k)?;
    }
    Ok(())
}
