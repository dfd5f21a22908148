//! The in-memory index of every queue: which messages wait, which are delayed until when,
//! which are in flight. Bodies live elsewhere (the redb file, or a map in memory).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::backend::Readiness;
use crate::message::{ContentType, QueueStats, Settle};

/// What the index keeps of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) timestamp_ms: u64,
    pub(crate) visible_at_ms: u64,
    pub(crate) attempts: u32,
    /// The body's length.
    pub(crate) bytes: u32,
    pub(crate) content_type: ContentType,
}

/// What a message costs its queue's quota: its body, plus a fixed amount for what is kept
/// beside it (so empty messages are not free).
pub(crate) fn cost(body_bytes: u32) -> u64 {
    u64::from(body_bytes) + MESSAGE_OVERHEAD
}

/// Bytes charged per message on top of its body.
pub(crate) const MESSAGE_OVERHEAD: u64 = 64;

#[derive(Default)]
pub(crate) struct QueueState {
    ready: BTreeMap<u64, Meta>,
    delayed: BTreeMap<(u64, u64), Meta>,
    in_flight: HashMap<u64, Meta>,
    /// What every message stored (waiting or in flight) costs: see [`cost`].
    pub(crate) stored_bytes: u64,
    pub(crate) next_seq: u64,
    notify: Arc<Notify>,
}

impl QueueState {
    /// Moves delayed messages whose time has come to ready.
    fn promote(&mut self, now_ms: u64) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let ((_, seq), meta) = entry.remove_entry();
            self.ready.insert(seq, meta);
        }
    }

    fn insert(&mut self, seq: u64, meta: Meta, now_ms: u64) {
        self.next_seq = self.next_seq.max(seq + 1);
        if meta.visible_at_ms > now_ms {
            self.delayed.insert((meta.visible_at_ms, seq), meta);
        } else {
            self.ready.insert(seq, meta);
        }
        self.notify.notify_one();
    }
}

/// Every queue's state.
#[derive(Default)]
pub(crate) struct Index {
    queues: HashMap<String, QueueState>,
}

impl Index {
    pub(crate) fn queue(&mut self, queue: &str) -> &mut QueueState {
        if !self.queues.contains_key(queue) {
            self.queues.insert(queue.to_string(), QueueState::default());
        }
        self.queues.get_mut(queue).expect("inserted above")
    }

    /// Adds a message stored (or loaded) at `seq`.
    pub(crate) fn insert(&mut self, queue: &str, seq: u64, meta: Meta, now_ms: u64) {
        let q = self.queue(queue);
        q.stored_bytes += cost(meta.bytes);
        q.insert(seq, meta, now_ms);
    }

    /// Takes up to `max` deliverable messages, oldest first, into flight, counting the
    /// delivery in their attempts.
    pub(crate) fn lease(&mut self, queue: &str, max: usize, now_ms: u64) -> Vec<(u64, Meta)> {
        let q = self.queue(queue);
        q.promote(now_ms);
        let mut out = Vec::new();
        while out.len() < max {
            let Some((seq, mut meta)) = q.ready.pop_first() else {
                break;
            };
            meta.attempts = meta.attempts.saturating_add(1);
            q.in_flight.insert(seq, meta.clone());
            out.push((seq, meta));
        }
        out
    }

    /// The message in flight at `seq`, if any.
    pub(crate) fn in_flight(&mut self, queue: &str, seq: u64) -> Option<&Meta> {
        self.queue(queue).in_flight.get(&seq)
    }

    /// Applies a settlement whose writes are durable. A retried message waits again (its
    /// attempts kept); anything else leaves `queue`.
    pub(crate) fn settled(&mut self, queue: &str, seq: u64, settle: &Settle, now_ms: u64) {
        let q = self.queue(queue);
        let Some(mut meta) = q.in_flight.remove(&seq) else {
            return;
        };
        if let Settle::Retry { delay_secs } = settle {
            meta.visible_at_ms = now_ms + u64::from(*delay_secs) * 1000;
            q.insert(seq, meta, now_ms);
        } else {
            q.stored_bytes = q.stored_bytes.saturating_sub(cost(meta.bytes));
        }
    }

    /// Puts messages still in flight back (a consumer that could not hand them over).
    pub(crate) fn release(&mut self, queue: &str, seqs: &[u64], now_ms: u64) {
        let q = self.queue(queue);
        for seq in seqs {
            if let Some(mut meta) = q.in_flight.remove(seq) {
                meta.attempts = meta.attempts.saturating_sub(1);
                q.insert(*seq, meta, now_ms);
            }
        }
    }

    pub(crate) fn readiness(&mut self, queue: &str, now_ms: u64) -> Readiness {
        let q = self.queue(queue);
        q.promote(now_ms);
        Readiness {
            ready: q.ready.len() as u64,
            next_delayed_ms: q.delayed.first_key_value().map(|((at, _), _)| *at),
        }
    }

    pub(crate) fn watch(&mut self, queue: &str) -> Arc<Notify> {
        self.queue(queue).notify.clone()
    }

    pub(crate) fn stats(&mut self, now_ms: u64) -> Vec<QueueStats> {
        let mut out: Vec<QueueStats> = self
            .queues
            .iter_mut()
            .map(|(name, q)| {
                q.promote(now_ms);
                QueueStats {
                    queue: name.clone(),
                    bytes: q.stored_bytes,
                    ready: q.ready.len() as u64,
                    delayed: q.delayed.len() as u64,
                    in_flight: q.in_flight.len() as u64,
                }
            })
            .collect();
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        out
    }

    /// Up to `max` waiting messages, ready first.
    pub(crate) fn peek(&mut self, queue: &str, max: usize, now_ms: u64) -> Vec<(u64, Meta)> {
        let q = self.queue(queue);
        q.promote(now_ms);
        q.ready
            .iter()
            .map(|(seq, m)| (*seq, m.clone()))
            .chain(q.delayed.iter().map(|((_, seq), m)| (*seq, m.clone())))
            .take(max)
            .collect()
    }
}
