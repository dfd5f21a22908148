//! Group commit: one thread owns writing. Every `put` and `delete` from every isolate is queued
//! to it; it takes whatever has queued up, applies it all in one write transaction, commits
//! with `Durability::Immediate` (one fsync for the batch) and only then resolves each caller.
//! While one batch is syncing the next one gathers, so throughput grows with concurrency
//! instead of being capped at one fsync per write. The same thread purges expired entries
//! when it has nothing else to do.
//!
//! Fair between namespaces: what has queued up is sorted into one queue per namespace, and a
//! batch takes one write from each in turn, so a small write of one tenant goes into the next
//! commit however many large ones another has queued (order within a namespace is kept).
//! Each namespace's stored bytes are kept in the file and checked against the node's quota
//! in the same transaction that writes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable};

use tokio::sync::oneshot;

use super::record;
use super::{ENTRIES, EXPIRY, USAGE};
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
    fn bytes(&self) -> usize {
        self.entry.as_ref().map_or(0, |e| e.value.len())
    }

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

/// Writes waiting for a batch, one queue per namespace, taken from in turn.
#[derive(Default)]
struct Pending {
    queues: HashMap<String, VecDeque<Job>>,
    /// Namespaces with something queued, in the order they are served next.
    turn: VecDeque<String>,
}

impl Pending {
    fn push(&mut self, job: Job) {
        let queue = self.queues.entry(job.ns.clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(job.ns.clone());
        }
        queue.push_back(job);
    }

    fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    /// The next batch: one write from each namespace in turn, up to the batch limits.
    fn batch(&mut self) -> Vec<Job> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH_WRITES && bytes < MAX_BATCH_BYTES {
            let Some(ns) = self.turn.pop_front() else {
                break;
            };
            let queue = self
                .queues
                .get_mut(&ns)
                .expect("a namespace in turn has a queue");
            let job = queue.pop_front().expect("a namespace in turn has a write");
            bytes += job.bytes();
            batch.push(job);
            if queue.is_empty() {
                self.queues.remove(&ns);
            } else {
                self.turn.push_back(ns);
            }
        }
        batch
    }
}

/// Runs until every sender is gone and everything queued is written.
pub(crate) fn run(
    db: Arc<Database>,
    rx: Receiver<Job>,
    clock: Arc<dyn Clock>,
    purge_every: Duration,
    quota: Option<u64>,
    stats: Arc<WriterStats>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut next_purge = Instant::now() + purge_every;
    let mut pending = Pending::default();
    let mut open = true;
    while open || !pending.is_empty() {
        if pending.is_empty() {
            let wait = next_purge.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(job) => pending.push(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // Everything else that has queued up meanwhile, sorted by namespace.
        while open {
            match rx.try_recv() {
                Ok(job) => pending.push(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let batch = pending.batch();
        if !batch.is_empty() {
            let outcomes = match commit(&db, &batch, quota) {
                Ok(outcomes) => {
                    stats.commits.fetch_add(1, Relaxed);
                    stats.writes.fetch_add(batch.len() as u64, Relaxed);
                    outcomes
                }
                Err(e) => batch
                    .iter()
                    .map(|job| Err(KvError::storage(job.op(), &e)))
                    .collect(),
            };
            for (job, outcome) in batch.into_iter().zip(outcomes) {
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

/// Bytes an entry takes in a namespace's usage: its key and its stored record.
fn stored_size(key: &str, record_len: usize) -> u64 {
    (key.len() + record_len) as u64
}

/// Applies a batch in one durable transaction. A write that would take its namespace past
/// `quota` is refused alone; the rest of the batch is written.
fn commit(
    db: &Database,
    batch: &[Job],
    quota: Option<u64>,
) -> Result<Vec<Result<(), KvError>>, redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut usage_table = txn.open_table(USAGE)?;
        let mut usage: HashMap<&str, u64> = HashMap::new();
        for job in batch {
            let ns = job.ns.as_str();
            let key = (ns, job.key.as_bytes());
            let used = match usage.get(ns) {
                Some(used) => *used,
                None => usage_table.get(ns)?.map_or(0, |g| g.value()),
            };
            let record = job.entry.as_ref().map(record::encode);
            let new_size = record
                .as_ref()
                .map_or(0, |r| stored_size(&job.key, r.len()));
            // Insert or remove hands back the old record: its size leaves the usage and its
            // expiry index row goes.
            let old = match &record {
                Some(record) => {
                    let old_len = entries.get(key)?.map(|g| g.value().len());
                    let old_size = old_len.map_or(0, |len| stored_size(&job.key, len));
                    if let Some(quota) = quota
                        && new_size > old_size
                        && used + (new_size - old_size) > quota
                    {
                        outcomes.push(Err(KvError::Quota {
                            quota,
                            used,
                            needed: new_size - old_size,
                        }));
                        usage.insert(ns, used);
                        continue;
                    }
                    entries.insert(key, record.as_slice())?
                }
                None => entries.remove(key)?,
            };
            let (old_size, old_expiration) = match old {
                Some(old) => (
                    stored_size(&job.key, old.value().len()),
                    record::decode(old.value()).and_then(|p| p.expiration),
                ),
                None => (0, None),
            };
            usage.insert(ns, (used + new_size).saturating_sub(old_size));
            if let Some(at) = old_expiration {
                expiry.remove((at, ns, job.key.as_bytes()))?;
            }
            if let Some(at) = job.entry.as_ref().and_then(|e| e.expiration) {
                expiry.insert((at, ns, job.key.as_bytes()), ())?;
            }
            outcomes.push(Ok(()));
        }
        for (ns, used) in usage {
            usage_table.insert(ns, used)?;
        }
    }
    txn.commit()?;
    Ok(outcomes)
}

/// Removes up to [`PURGE_BATCH`] entries that expired at or before `now`.
pub(crate) fn purge(db: &Database, now: u64) -> Result<usize, redb::Error> {
    let txn = db.begin_write()?;
    let mut removed = 0;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut usage_table = txn.open_table(USAGE)?;
        let mut freed: HashMap<String, u64> = HashMap::new();
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
            if let Some(old) = entries.remove((ns.as_str(), key.as_slice()))? {
                *freed.entry(ns.clone()).or_default() += (key.len() + old.value().len()) as u64;
            }
            removed += 1;
        }
        for (ns, bytes) in freed {
            let used = usage_table.get(ns.as_str())?.map_or(0, |g| g.value());
            usage_table.insert(ns.as_str(), used.saturating_sub(bytes))?;
        }
    }
    txn.commit()?;
    Ok(removed)
}

/// Counts every namespace's stored bytes from its entries: for a file written before usage
/// was kept. Runs once, when the usage table is created.
pub(crate) fn count_usage(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let entries = txn.open_table(ENTRIES)?;
        let mut usage_table = txn.open_table(USAGE)?;
        let mut usage: HashMap<String, u64> = HashMap::new();
        for row in entries.iter()? {
            let (k, v) = row?;
            let (ns, key) = k.value();
            *usage.entry(ns.to_string()).or_default() += (key.len() + v.value().len()) as u64;
        }
        for (ns, used) in usage {
            usage_table.insert(ns.as_str(), used)?;
        }
    }
    txn.commit()?;
    Ok(())
}
