//! Group commit: one thread owns writing. Every `put` and `delete` from every isolate is queued
//! to it; it takes whatever has queued up, applies it all in one write transaction, commits
//! with `Durability::Immediate` (one fsync for the batch) and only then resolves each caller.
//! While one batch is syncing the next one gathers, so throughput grows with concurrency
//! instead of being capped at one fsync per write. The same thread purges expired entries
//! when it has nothing else to do.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable};

use tokio::sync::oneshot;

use super::record;
use super::{ENTRIES, EXPIRY};
use crate::backend::Entry;
use crate::clock::Clock;
use crate::error::{KvError, KvOp};

/// Most writes in one transaction.
const MAX_BATCH_WRITES: usize = 4096;
/// Stop adding to a batch past this many value bytes.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// Most expired entries removed in one purge transaction.
const PURGE_BATCH: usize = 10_000;

/// A write waiting for its batch.
pub(crate) struct Job {
    pub(crate) ns: String,
    pub(crate) key: String,
    /// `Some` to store, `None` to delete.
    pub(crate) entry: Option<Entry>,
    pub(crate) done: oneshot::Sender<Result<(), KvError>>,
}

impl Job {
    fn op(&self) -> KvOp {
        if self.entry.is_some() {
            KvOp::Put
        } else {
            KvOp::Delete
        }
    }
}

/// Counters the writer keeps, for tests and the benchmark.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Write transactions committed.
    pub commits: std::sync::atomic::AtomicU64,
    /// Writes applied.
    pub writes: std::sync::atomic::AtomicU64,
    /// Expired entries purged.
    pub purged: std::sync::atomic::AtomicU64,
}

/// Runs until every sender is gone.
pub(crate) fn run(
    db: Arc<Database>,
    rx: Receiver<Job>,
    clock: Arc<dyn Clock>,
    purge_every: Duration,
    stats: Arc<WriterStats>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut next_purge = Instant::now() + purge_every;
    loop {
        let wait = next_purge.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(wait) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if let Some(first) = first {
            let mut bytes = first.entry.as_ref().map_or(0, |e| e.value.len());
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_WRITES && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes += job.entry.as_ref().map_or(0, |e| e.value.len());
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            let result = commit(&db, &batch);
            if result.is_ok() {
                stats.commits.fetch_add(1, Relaxed);
                stats.writes.fetch_add(batch.len() as u64, Relaxed);
            }
            for job in batch {
                let outcome = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(KvError::storage(job.op(), e)),
                };
                let _ = job.done.send(outcome);
            }
        }
        if Instant::now() >= next_purge {
            match purge(&db, clock.now_secs()) {
                Ok(n) => {
                    stats.purged.fetch_add(n as u64, Relaxed);
                    if n > 0 {
                        tracing::debug!(purged = n, "kv: purged expired entries");
                    }
                    // A full batch means more are waiting: come back soon.
                    next_purge = Instant::now()
                        + if n == PURGE_BATCH {
                            Duration::ZERO
                        } else {
                            purge_every
                        };
                }
                Err(e) => {
                    tracing::warn!("kv: purging expired entries failed: {e}");
                    next_purge = Instant::now() + purge_every;
                }
            }
        }
    }
}

/// Applies a batch in one durable transaction.
fn commit(db: &Database, batch: &[Job]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        for job in batch {
            let key = (job.ns.as_str(), job.key.as_bytes());
            // Insert or remove hands back the old record: its expiry index row goes.
            let old_expiration = match &job.entry {
                Some(entry) => entries
                    .insert(key, record::encode(entry).as_slice())?
                    .and_then(|old| record::decode(old.value()).and_then(|p| p.expiration)),
                None => entries
                    .remove(key)?
                    .and_then(|old| record::decode(old.value()).and_then(|p| p.expiration)),
            };
            if let Some(at) = old_expiration {
                expiry.remove((at, job.ns.as_str(), job.key.as_bytes()))?;
            }
            if let Some(at) = job.entry.as_ref().and_then(|e| e.expiration) {
                expiry.insert((at, job.ns.as_str(), job.key.as_bytes()), ())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Removes up to [`PURGE_BATCH`] entries that expired at or before `now`.
pub(crate) fn purge(db: &Database, now: u64) -> Result<usize, redb::Error> {
    let txn = db.begin_write()?;
    let mut removed = 0;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut due: Vec<(u64, String, Vec<u8>)> = Vec::new();
        for row in expiry.iter()? {
            let (k, _) = row?;
            let (at, ns, key) = k.value();
            if at > now || due.len() == PURGE_BATCH {
                break;
            }
            due.push((at, ns.to_string(), key.to_vec()));
        }
        for (at, ns, key) in &due {
            expiry.remove((*at, ns.as_str(), key.as_slice()))?;
            entries.remove((ns.as_str(), key.as_slice()))?;
            removed += 1;
        }
    }
    txn.commit()?;
    Ok(removed)
}
