//! A consumer: one task per consumed queue that waits for a batch to fill (or its timeout to
//! pass), leases it, hands it to the app's `queue` handler through the node's host, and
//! settles every message by what the handler decided.
//!
//! A message the handler acked (or that was in a batch it finished without deciding) is
//! removed; one it retried, or any it did not ack when it threw or broke a limit, waits
//! `delaySeconds` (or the consumer's `retry_delay`) and is delivered again, until it has been
//! delivered `max_retries + 1` times: then it moves to the dead-letter queue, or is dropped
//! with a log line. A message leaves the store only when its settlement is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_binding::{Host, HostEvent, HostReply, QueueBatch, QueueMessage, QueueOutcome};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::QueueBackend;
use crate::binding::ConsumerSettings;
use crate::message::{Message, Settle};
use crate::rules;

/// Which app consumes a queue, and how.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Consumer {
    pub(crate) app: String,
    pub(crate) settings: ConsumerSettings,
}

/// The longest the consumer sleeps without looking at its queue again.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Consumes `queue` as `config` says until it says `None`.
pub(crate) async fn run(
    queue: String,
    mut config: watch::Receiver<Option<Consumer>>,
    store: Arc<dyn QueueBackend>,
    host: Arc<dyn Host>,
) {
    let notify = store.watch(&queue);
    let mut batches: JoinSet<()> = JoinSet::new();
    let mut waiting_since: Option<Instant> = None;
    loop {
        let Some(consumer) = config.borrow_and_update().clone() else {
            while batches.join_next().await.is_some() {}
            return;
        };
        let s = &consumer.settings;
        let ready = store.readiness(&queue);
        let full = ready.ready >= u64::from(s.max_batch_size);
        let timed_out = ready.ready > 0
            && waiting_since.get_or_insert_with(Instant::now).elapsed() >= s.max_batch_timeout;
        if ready.ready == 0 {
            waiting_since = None;
        }
        if (full || timed_out) && batches.len() < s.max_concurrency as usize {
            match store.lease(&queue, s.max_batch_size as usize).await {
                Ok(messages) if !messages.is_empty() => {
                    waiting_since = None;
                    let (store, host, consumer) = (store.clone(), host.clone(), consumer.clone());
                    batches.spawn(deliver(queue.clone(), consumer, messages, store, host));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // The messages are back in line; look again a little later, not at once.
                    tracing::error!(%queue, "cannot take a batch: {e}");
                    tokio::time::sleep(IDLE_CHECK).await;
                    continue;
                }
            }
        }
        // Wake for: a new message, the batch timeout, a delayed message's time, a batch done,
        // a change of consumer; and at least every IDLE_CHECK.
        let mut wait = IDLE_CHECK;
        if let Some(since) = waiting_since {
            wait = wait.min(s.max_batch_timeout.saturating_sub(since.elapsed()));
        }
        if let Some(at) = ready.next_delayed_ms {
            let now = crate::store::now_ms();
            wait = wait.min(Duration::from_millis(at.saturating_sub(now)));
        }
        let busy = batches.len() >= s.max_concurrency as usize;
        tokio::select! {
            () = notify.notified(), if !busy => {}
            () = tokio::time::sleep(wait), if !busy => {}
            Some(_) = batches.join_next(), if !batches.is_empty() => {}
            changed = config.changed() => {
                if changed.is_err() {
                    while batches.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }
}

/// Hands `messages` to the consumer's app and settles them by its decisions.
async fn deliver(
    queue: String,
    consumer: Consumer,
    mut messages: Vec<Message>,
    store: Arc<dyn QueueBackend>,
    host: Arc<dyn Host>,
) {
    // The bodies move into the batch; what settling needs (seq, id, attempts) stays.
    let batch = QueueBatch {
        queue: queue.clone(),
        messages: messages
            .iter_mut()
            .map(|m| QueueMessage {
                id: m.id.clone(),
                timestamp_ms: m.timestamp_ms,
                body: std::mem::take(&mut m.body),
                content_type: m.content_type.as_str().to_string(),
                attempts: m.attempts,
            })
            .collect(),
    };
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    let app = &consumer.app;
    let outcome = match host.dispatch(app, HostEvent::Queue(batch)).await {
        Ok(HostReply::Queue(outcome)) => {
            if let Some(error) = &outcome.error {
                tracing::warn!(tenant = %app, %queue, "queue handler failed: {error}");
            }
            outcome
        }
        Ok(_) => QueueOutcome::default(),
        Err(e) if e.code == "no-such-app" || e.code == "load-error" => {
            // The handler never saw the batch (no app, or its script does not load): not the
            // messages' fault, so back in line with their delivery not counted. (A batch the
            // isolate took and then died on counts: a message that crashes it must not be
            // retried forever.)
            tracing::warn!(tenant = %app, %queue, code = %e.code, "batch not delivered: {}", e.message);
            store.release(&queue, &seqs);
            tokio::time::sleep(IDLE_CHECK).await;
            return;
        }
        Err(e) => {
            tracing::warn!(tenant = %app, %queue, code = %e.code, "queue handler failed: {}", e.message);
            QueueOutcome {
                error: Some(e.message),
                ..QueueOutcome::default()
            }
        }
    };
    let outcomes = messages
        .iter()
        .map(|m| (m.seq, decide(m, &outcome, &consumer.settings, app)))
        .collect();
    if let Err(e) = store.settle(&queue, outcomes).await {
        // Nothing was written: the messages go back in line and are delivered again.
        tracing::error!(tenant = %app, %queue, "cannot settle a batch (its messages will be delivered again): {e}");
        store.release(&queue, &seqs);
    }
}

/// What becomes of `m` given the handler's decisions.
fn decide(m: &Message, outcome: &QueueOutcome, s: &ConsumerSettings, app: &str) -> Settle {
    let delay = |d: Option<f64>| {
        d.and_then(|d| rules::check_delay(d).ok())
            .unwrap_or(s.retry_delay)
    };
    let retry = if outcome.acks.contains(&m.id) {
        None
    } else if let Some((_, d)) = outcome.retries.iter().find(|(id, _)| *id == m.id) {
        Some(delay(*d))
    } else if outcome.ack_all {
        None
    } else if outcome.retry_all {
        Some(delay(outcome.retry_all_delay))
    } else if outcome.error.is_some() {
        Some(s.retry_delay)
    } else {
        None
    };
    let Some(delay_secs) = retry else {
        return Settle::Ack;
    };
    if m.attempts > s.max_retries {
        return match &s.dead_letter_queue {
            Some(dlq) => Settle::DeadLetter { queue: dlq.clone() },
            None => {
                tracing::warn!(tenant = %app, queue = %s.queue, id = %m.id, attempts = m.attempts, "message dropped: its retries are used up and the queue has no dead-letter queue");
                Settle::Drop
            }
        };
    }
    Settle::Retry { delay_secs }
}
