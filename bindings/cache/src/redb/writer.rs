//! The cache's writer thread: applies queued puts and deletes, a batch per transaction.
//!
//! - **Fair**: what has queued up is sorted into one queue per app, and a batch takes one job
//!   from each in turn, so one app's flood of writes does not hold back another's.
//! - **Planned, then written**: the in-memory index decides each job (what is stored, what is
//!   evicted) under its lock; the file is written after, without the lock, so readers' hits
//!   never wait for disk. If a commit fails, the index is rebuilt from the file.
//! - **Group commit**: a batch is one transaction, synced before its jobs are answered, so what
//!   a put or delete resolved survives a crash, and one sync serves the whole batch. (Committing
//!   unsynced and syncing once a second was tried: the once-a-second sync of a second's worth of
//!   pages held up every put behind it, p99 170 ms under the `cache` benchmark's load against
//!   about 11 ms this way.)
//! - **Swept when idle**: entries that expired are removed a batch at a time when nothing
//!   else is waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::{BODY, META, Record};
use crate::backend::{Entry, EntryKey};
use crate::error::CacheError;
use crate::index::{Index, charge};

/// How often an idle writer sweeps expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Most expired entries one sweep removes.
const SWEEP_BATCH: usize = 1024;
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
    /// Remove every entry of apps not in the list.
    Retain(Vec<Arc<str>>),
}

impl Job {
    fn bytes(&self) -> usize {
        match self {
            Job::Put { entry, .. } => entry.body.len(),
            _ => 0,
        }
    }

    fn app(&self) -> Option<&Arc<str>> {
        match self {
            Job::Put { key, .. } | Job::Delete { key, .. } => Some(&key.app),
            Job::Retain(_) => None,
        }
    }
}

/// Jobs waiting, one queue per app, taken from in turn.
#[derive(Default)]
struct Waiting {
    queues: HashMap<Option<Arc<str>>, VecDeque<Job>>,
    turn: VecDeque<Option<Arc<str>>>,
}

impl Waiting {
    fn push(&mut self, job: Job) {
        let app = job.app().cloned();
        let queue = self.queues.entry(app.clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(app);
        }
        queue.push_back(job);
    }

    fn pop(&mut self) -> Option<Job> {
        let app = self.turn.pop_front()?;
        let queue = self.queues.get_mut(&app)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&app);
        } else {
            self.turn.push_back(app);
        }
        job
    }

    fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }
}

/// Runs until every sender is gone.
pub(super) fn run(db: &Database, index: &Mutex<Index>, rx: Receiver<Job>) {
    let mut swept = Instant::now();
    let mut waiting = Waiting::default();
    let mut open = true;
    while open || !waiting.is_empty() {
        if waiting.is_empty() {
            match rx.recv_timeout(SWEEP_EVERY.saturating_sub(swept.elapsed())) {
                Ok(job) => waiting.push(job),
                Err(RecvTimeoutError::Timeout) => {
                    sweep(db, index);
                    swept = Instant::now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Everything that has queued up, sorted by app.
        loop {
            match rx.try_recv() {
                Ok(job) => waiting.push(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Some(job) = waiting.pop() else { break };
            bytes += job.bytes();
            batch.push(job);
        }
        apply(db, index, batch);
    }
}

/// What the index decided for a job, to write to the file.
enum Planned {
    Store {
        key: EntryKey,
        entry: Entry,
        done: oneshot::Sender<Result<bool, CacheError>>,
    },
    Answer {
        done: oneshot::Sender<Result<bool, CacheError>>,
        answer: bool,
    },
    Delete {
        key: EntryKey,
        now: u64,
        done: oneshot::Sender<Result<bool, CacheError>>,
    },
}

/// Applies `batch` in one synced transaction, then answers its jobs.
fn apply(db: &Database, index: &Mutex<Index>, batch: Vec<Job>) {
    let mut planned = Vec::with_capacity(batch.len());
    let mut gone = Vec::new();
    {
        let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
        for job in batch {
            match job {
                Job::Put { key, entry, done } => {
                    let size = charge(&key, entry.size());
                    if !index.fits(size) {
                        planned.push(Planned::Answer {
                            done,
                            answer: false,
                        });
                        continue;
                    }
                    let inserted =
                        index.insert(key.clone(), size, entry.expires_at, entry.stored_at);
                    gone.extend(inserted.gone);
                    if inserted.stored {
                        planned.push(Planned::Store { key, entry, done });
                    } else {
                        planned.push(Planned::Answer {
                            done,
                            answer: false,
                        });
                    }
                }
                Job::Delete { key, now, done } => {
                    index.remove(&key);
                    planned.push(Planned::Delete { key, now, done });
                }
                Job::Retain(apps) => {
                    for key in index.others(&apps) {
                        index.remove(&key);
                        gone.push(key);
                    }
                }
            }
        }
    }
    let mut answers = Vec::with_capacity(planned.len());
    let result = (|| -> Result<(), CacheError> {
        let txn = db.begin_write()?;
        remove(&txn, &gone)?;
        for plan in planned {
            match plan {
                Planned::Store {
                    key,
                    mut entry,
                    done,
                } => {
                    write(&txn, &key, &mut entry)?;
                    answers.push((done, true));
                }
                Planned::Answer { done, answer } => answers.push((done, answer)),
                Planned::Delete { key, now, done } => {
                    let fresh = delete(&txn, &key, now)?;
                    answers.push((done, fresh));
                }
            }
        }
        txn.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            for (done, answer) in answers {
                let _ = done.send(Ok(answer));
            }
        }
        Err(e) => {
            tracing::error!("cache: a write failed: {e}; reading the index from the file again");
            for (done, _) in answers {
                let _ = done.send(Err(e.clone()));
            }
            // The index was changed for writes that did not happen: make it the file's again.
            let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = super::rebuild(db, &mut index, crate::now_ms()) {
                tracing::error!("cache: reading the index from the file failed: {e}");
            }
        }
    }
}

/// Removes up to a batch of expired entries.
fn sweep(db: &Database, index: &Mutex<Index>) {
    let expired = index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .expired(crate::now_ms(), SWEEP_BATCH);
    if expired.is_empty() {
        return;
    }
    let result = (|| -> Result<(), CacheError> {
        let txn = db.begin_write()?;
        remove(&txn, &expired)?;
        txn.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!("cache: removing expired entries failed: {e}");
    }
}

fn write(txn: &WriteTransaction, key: &EntryKey, entry: &mut Entry) -> Result<(), CacheError> {
    let body = std::mem::take(&mut entry.body);
    let record = serde_json::to_vec(&Record {
        body_len: body.len() as u64,
        entry: std::mem::take(entry),
    })
    .map_err(|e| CacheError::Storage(e.to_string()))?;
    let k = (&*key.app, &*key.cache, key.url.as_str());
    txn.open_table(META)?.insert(k, record.as_slice())?;
    txn.open_table(BODY)?.insert(k, body.as_slice())?;
    Ok(())
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
