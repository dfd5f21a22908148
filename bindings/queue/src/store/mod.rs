//! [`QueueStore`]: the queue backend of a node, in a redb file (`queues.redb`, group-committed
//! durable writes) or in memory. Either way an in-memory [`index::Index`] says which messages
//! wait, are delayed, or are in flight; the file holds every message until it is settled, and
//! on open every message in it waits again (those in flight when the process died are
//! delivered again: at-least-once).

mod index;
mod record;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use edge_binding::StoreError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::backend::{QueueBackend, QueueFuture, Readiness};
use crate::error::QueueError;
use crate::message::{Message, NewMessage, QueueStats, Settle, new_id};
use index::{Index, Meta};

/// Message metadata by (queue, seq): see [`record`].
pub(crate) const META: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("meta");
/// Message bodies by (queue, seq).
pub(crate) const BODY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("body");

/// A node's queues.
pub struct QueueStore {
    index: Arc<Mutex<Index>>,
    mode: Mode,
    /// Most body bytes one queue may hold; `None` for no bound.
    quota: Option<u64>,
}

enum Mode {
    /// Bodies in memory; nothing survives the process.
    Memory(Mutex<HashMap<(String, u64), Vec<u8>>>),
    /// A redb file and the thread that writes it.
    Redb {
        db: Arc<Database>,
        writer: Mutex<mpsc::Sender<writer::Job>>,
    },
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl QueueStore {
    /// Bounds the body bytes one queue may hold (in memory; a file's bound is given to
    /// [`QueueStore::open`]): past it a send fails with [`QueueError::Quota`].
    pub fn with_quota(mut self, quota: Option<u64>) -> Self {
        self.quota = quota;
        self
    }

    /// Queues in memory.
    pub fn memory() -> Self {
        Self {
            index: Arc::default(),
            mode: Mode::Memory(Mutex::default()),
            quota: None,
        }
    }

    /// The file a data directory keeps queues in.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join("queues.redb")
    }

    /// Opens (creating if needed) the queues in `path`, loads their index and starts the
    /// writer thread.
    pub fn open(path: &Path, quota: Option<u64>) -> Result<Self, StoreError> {
        let failed = |message: String| StoreError::failed(path, message);
        let db = edge_binding::open_redb(path)?;
        let txn = db.begin_write().map_err(|e| failed(e.to_string()))?;
        txn.open_table(META).map_err(|e| failed(e.to_string()))?;
        txn.open_table(BODY).map_err(|e| failed(e.to_string()))?;
        txn.commit().map_err(|e| failed(e.to_string()))?;
        let mut index = Index::default();
        {
            let now = now_ms();
            let txn = db.begin_read().map_err(|e| failed(e.to_string()))?;
            let table = txn.open_table(META).map_err(|e| failed(e.to_string()))?;
            for row in table.iter().map_err(|e| failed(e.to_string()))? {
                let (key, value) = row.map_err(|e| failed(e.to_string()))?;
                let (queue, seq) = key.value();
                if let Some(meta) = record::decode(value.value()) {
                    index.insert(queue, seq, meta, now);
                }
            }
        }
        let db = Arc::new(db);
        let index = Arc::new(Mutex::new(index));
        let (tx, rx) = mpsc::channel();
        {
            let (db, index) = (db.clone(), index.clone());
            std::thread::Builder::new()
                .name("queue-writer".into())
                .spawn(move || writer::run(&db, &index, &rx, quota))
                .map_err(|e| failed(format!("cannot start the writer thread: {e}")))?;
        }
        Ok(Self {
            index,
            mode: Mode::Redb {
                db,
                writer: Mutex::new(tx),
            },
            quota,
        })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    fn bodies(&self, queue: &str, seqs: &[u64]) -> Result<Vec<Vec<u8>>, QueueError> {
        match &self.mode {
            Mode::Memory(bodies) => {
                let bodies = lock(bodies);
                Ok(seqs
                    .iter()
                    .map(|seq| {
                        bodies
                            .get(&(queue.to_string(), *seq))
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect())
            }
            Mode::Redb { db, .. } => {
                let txn = db.begin_read().map_err(QueueError::storage)?;
                let table = txn.open_table(BODY).map_err(QueueError::storage)?;
                seqs.iter()
                    .map(|seq| {
                        Ok(table
                            .get((queue, *seq))
                            .map_err(QueueError::storage)?
                            .map(|v| v.value().to_vec())
                            .unwrap_or_default())
                    })
                    .collect()
            }
        }
    }

    fn messages(&self, queue: &str, metas: Vec<(u64, Meta)>) -> Result<Vec<Message>, QueueError> {
        let seqs: Vec<u64> = metas.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.bodies(queue, &seqs)?;
        Ok(metas
            .into_iter()
            .zip(bodies)
            .map(|((seq, meta), body)| Message {
                id: meta.id,
                seq,
                timestamp_ms: meta.timestamp_ms,
                body,
                content_type: meta.content_type,
                attempts: meta.attempts,
            })
            .collect())
    }

    fn submit(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<(), QueueError>>) -> writer::Job,
    ) -> QueueFuture<()> {
        let Mode::Redb { writer, .. } = &self.mode else {
            unreachable!("only the redb store has a writer");
        };
        let (done, rx) = oneshot::channel();
        let sent = lock(writer).send(job(done));
        Box::pin(async move {
            if sent.is_err() {
                return Err(QueueError::storage("the queue writer has stopped"));
            }
            rx.await
                .unwrap_or_else(|_| Err(QueueError::storage("the queue writer has stopped")))
        })
    }
}

/// How long a message waits when its dead-letter queue is full.
pub(crate) const DLQ_FULL_RETRY_SECS: u32 = 60;

/// Whether `adding` more bytes fit in `queue`, which holds `stored`.
pub(crate) fn check_quota(
    queue: &str,
    stored: u64,
    adding: u64,
    quota: Option<u64>,
) -> Result<(), QueueError> {
    match quota {
        Some(quota) if stored.saturating_add(adding) > quota => Err(QueueError::Quota {
            queue: queue.to_string(),
            stored,
            quota,
        }),
        _ => Ok(()),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A message's index entry, new.
pub(crate) fn new_meta(message: &NewMessage, now: u64) -> Meta {
    Meta {
        bytes: message.body.len() as u32,
        id: new_id(),
        timestamp_ms: now,
        visible_at_ms: now + u64::from(message.delay_secs) * 1000,
        attempts: 0,
        content_type: message.content_type,
    }
}

impl QueueBackend for QueueStore {
    fn send(&self, queue: &str, messages: Vec<NewMessage>) -> QueueFuture<()> {
        match &self.mode {
            Mode::Memory(bodies) => {
                let now = now_ms();
                let mut index = self.index();
                let adding: u64 = messages
                    .iter()
                    .map(|m| index::cost(m.body.len() as u32))
                    .sum();
                if let Err(e) =
                    check_quota(queue, index.queue(queue).stored_bytes, adding, self.quota)
                {
                    return Box::pin(async move { Err(e) });
                }
                let mut bodies = lock(bodies);
                for m in messages {
                    let seq = index.queue(queue).next_seq;
                    let meta = new_meta(&m, now);
                    bodies.insert((queue.to_string(), seq), m.body);
                    index.insert(queue, seq, meta, now);
                }
                Box::pin(async { Ok(()) })
            }
            Mode::Redb { .. } => {
                let queue = queue.to_string();
                self.submit(|done| writer::Job::Send {
                    queue,
                    messages,
                    done,
                })
            }
        }
    }

    fn lease(&self, queue: &str, max: usize) -> QueueFuture<Vec<Message>> {
        let metas = self.index().lease(queue, max, now_ms());
        let seqs: Vec<u64> = metas.iter().map(|(seq, _)| *seq).collect();
        let result = self.messages(queue, metas);
        if result.is_err() {
            // Not delivered: back in line, uncounted.
            self.index().release(queue, &seqs, now_ms());
        }
        Box::pin(async move { result })
    }

    fn settle(&self, queue: &str, outcomes: Vec<(u64, Settle)>) -> QueueFuture<()> {
        match &self.mode {
            Mode::Memory(bodies) => {
                let now = now_ms();
                let mut index = self.index();
                let mut bodies = lock(bodies);
                for (seq, settle) in outcomes {
                    let Some(meta) = index.in_flight(queue, seq).cloned() else {
                        continue;
                    };
                    match &settle {
                        Settle::Ack | Settle::Drop => {
                            bodies.remove(&(queue.to_string(), seq));
                        }
                        Settle::Retry { .. } => {}
                        Settle::DeadLetter { queue: dlq }
                            if check_quota(
                                dlq,
                                index.queue(dlq).stored_bytes,
                                index::cost(meta.bytes),
                                self.quota,
                            )
                            .is_err() =>
                        {
                            tracing::warn!(queue = %queue, dead_letter_queue = %dlq, "the dead-letter queue is full: the message waits a minute and is tried again");
                            index.settled(
                                queue,
                                seq,
                                &Settle::Retry {
                                    delay_secs: DLQ_FULL_RETRY_SECS,
                                },
                                now,
                            );
                            continue;
                        }
                        Settle::DeadLetter { queue: dlq } => {
                            let body = bodies.remove(&(queue.to_string(), seq)).unwrap_or_default();
                            let to = index.queue(dlq).next_seq;
                            bodies.insert((dlq.clone(), to), body);
                            let moved = Meta {
                                attempts: 0,
                                visible_at_ms: now,
                                ..meta
                            };
                            index.insert(dlq, to, moved, now);
                        }
                    }
                    index.settled(queue, seq, &settle, now);
                }
                Box::pin(async { Ok(()) })
            }
            Mode::Redb { .. } => {
                let queue = queue.to_string();
                self.submit(|done| writer::Job::Settle {
                    queue,
                    outcomes,
                    done,
                })
            }
        }
    }

    fn release(&self, queue: &str, seqs: &[u64]) {
        self.index().release(queue, seqs, now_ms());
    }

    fn readiness(&self, queue: &str) -> Readiness {
        self.index().readiness(queue, now_ms())
    }

    fn watch(&self, queue: &str) -> Arc<tokio::sync::Notify> {
        self.index().watch(queue)
    }

    fn stats(&self) -> Vec<QueueStats> {
        self.index().stats(now_ms())
    }

    fn peek(&self, queue: &str, max: usize) -> QueueFuture<Vec<Message>> {
        let metas = self.index().peek(queue, max, now_ms());
        let result = self.messages(queue, metas);
        Box::pin(async move { result })
    }
}
