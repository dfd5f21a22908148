//! Group commit: one thread writes the queue file. Sends and settlements from every producer
//! and consumer queue up for it; it takes what has gathered, writes it all in one transaction,
//! commits with `Durability::Immediate` (one fsync for the lot), updates the index, and only
//! then answers each caller. So a `send` resolves once its messages are durable, and a message
//! leaves the file only once its ack is.

use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::index::{Index, Meta, cost};
use super::{BODY, DLQ_FULL_RETRY_SECS, META, check_quota, lock, new_meta, now_ms, record};
use crate::error::QueueError;
use crate::message::{NewMessage, Settle};

/// Most jobs in one transaction.
const MAX_JOBS: usize = 512;

/// A write waiting for its transaction.
pub(crate) enum Job {
    /// Append messages to a queue.
    Send {
        queue: String,
        messages: Vec<NewMessage>,
        done: oneshot::Sender<Result<(), QueueError>>,
    },
    /// Settle messages in flight.
    Settle {
        queue: String,
        outcomes: Vec<(u64, Settle)>,
        done: oneshot::Sender<Result<(), QueueError>>,
    },
}

/// What the index learns once a transaction is durable.
enum Change {
    Insert {
        queue: String,
        seq: u64,
        meta: Meta,
    },
    Settled {
        queue: String,
        seq: u64,
        settle: Settle,
    },
}

/// Writes until every sender is gone. A send that would take its queue past `quota` fails
/// alone; the rest of its transaction goes through.
pub(crate) fn run(db: &Database, index: &Mutex<Index>, rx: &Receiver<Job>, quota: Option<u64>) {
    while let Ok(first) = rx.recv() {
        let mut gathered = vec![first];
        while gathered.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => gathered.push(job),
                Err(_) => break,
            }
        }
        let mut jobs = Vec::with_capacity(gathered.len());
        let mut adding: std::collections::HashMap<String, u64> = Default::default();
        for job in gathered {
            if let Job::Send {
                queue, messages, ..
            } = &job
            {
                let bytes: u64 = messages.iter().map(|m| cost(m.body.len() as u32)).sum();
                let stored = lock(index).queue(queue).stored_bytes;
                let pending = adding.entry(queue.clone()).or_default();
                if let Err(e) = check_quota(queue, stored + *pending, bytes, quota) {
                    let Job::Send { done, .. } = job else {
                        unreachable!("matched above")
                    };
                    let _ = done.send(Err(e));
                    continue;
                }
                *pending += bytes;
            }
            jobs.push(job);
        }
        if jobs.is_empty() {
            continue;
        }
        let now = now_ms();
        let result = commit(db, index, &mut jobs, now, quota);
        match result {
            Ok(changes) => {
                let mut index = lock(index);
                for change in changes {
                    match change {
                        Change::Insert { queue, seq, meta } => index.insert(&queue, seq, meta, now),
                        Change::Settled { queue, seq, settle } => {
                            index.settled(&queue, seq, &settle, now);
                        }
                    }
                }
                drop(index);
                for job in jobs {
                    let (Job::Send { done, .. } | Job::Settle { done, .. }) = job;
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!("queue write failed: {e}");
                for job in jobs {
                    let (Job::Send { done, .. } | Job::Settle { done, .. }) = job;
                    let _ = done.send(Err(QueueError::storage(&e)));
                }
            }
        }
    }
}

/// Writes `jobs` in one durable transaction; returns what the index must learn.
fn commit(
    db: &Database,
    index: &Mutex<Index>,
    jobs: &mut [Job],
    now: u64,
    quota: Option<u64>,
) -> Result<Vec<Change>, redb::Error> {
    let mut changes = Vec::new();
    let mut dlq_added: std::collections::HashMap<String, u64> = Default::default();
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut meta_table = txn.open_table(META)?;
        let mut body_table = txn.open_table(BODY)?;
        for job in jobs.iter_mut() {
            match job {
                Job::Send {
                    queue, messages, ..
                } => {
                    for m in std::mem::take(messages) {
                        let seq = reserve(index, queue);
                        let meta = new_meta(&m, now);
                        meta_table
                            .insert((queue.as_str(), seq), record::encode(&meta).as_slice())?;
                        body_table.insert((queue.as_str(), seq), m.body.as_slice())?;
                        changes.push(Change::Insert {
                            queue: queue.clone(),
                            seq,
                            meta,
                        });
                    }
                }
                Job::Settle {
                    queue, outcomes, ..
                } => {
                    for (seq, settle) in std::mem::take(outcomes) {
                        let Some(meta) = lock(index).in_flight(queue, seq).cloned() else {
                            continue;
                        };
                        let settle = match settle {
                            Settle::DeadLetter { queue: dlq } => {
                                let stored = lock(index).queue(&dlq).stored_bytes
                                    + dlq_added.get(&dlq).copied().unwrap_or(0);
                                if check_quota(&dlq, stored, cost(meta.bytes), quota).is_err() {
                                    tracing::warn!(%queue, dead_letter_queue = %dlq, "the dead-letter queue is full: the message waits a minute and is tried again");
                                    Settle::Retry {
                                        delay_secs: DLQ_FULL_RETRY_SECS,
                                    }
                                } else {
                                    *dlq_added.entry(dlq.clone()).or_default() += cost(meta.bytes);
                                    Settle::DeadLetter { queue: dlq }
                                }
                            }
                            other => other,
                        };
                        let key = (queue.as_str(), seq);
                        match &settle {
                            Settle::Ack | Settle::Drop => {
                                meta_table.remove(key)?;
                                body_table.remove(key)?;
                            }
                            Settle::Retry { delay_secs } => {
                                let waiting = Meta {
                                    visible_at_ms: now + u64::from(*delay_secs) * 1000,
                                    ..meta
                                };
                                meta_table.insert(key, record::encode(&waiting).as_slice())?;
                            }
                            Settle::DeadLetter { queue: dlq } => {
                                let body = body_table
                                    .remove(key)?
                                    .map(|v| v.value().to_vec())
                                    .unwrap_or_default();
                                meta_table.remove(key)?;
                                let to = reserve(index, dlq);
                                let moved = Meta {
                                    attempts: 0,
                                    visible_at_ms: now,
                                    ..meta
                                };
                                meta_table.insert(
                                    (dlq.as_str(), to),
                                    record::encode(&moved).as_slice(),
                                )?;
                                body_table.insert((dlq.as_str(), to), body.as_slice())?;
                                changes.push(Change::Insert {
                                    queue: dlq.clone(),
                                    seq: to,
                                    meta: moved,
                                });
                            }
                        }
                        changes.push(Change::Settled {
                            queue: queue.clone(),
                            seq,
                            settle,
                        });
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(changes)
}

/// The next sequence number of `queue`, taken.
fn reserve(index: &Mutex<Index>, queue: &str) -> u64 {
    let mut index = lock(index);
    let q = index.queue(queue);
    let seq = q.next_seq;
    q.next_seq += 1;
    seq
}
