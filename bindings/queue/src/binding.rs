//! [`Queues`]: the queue binding as a node hosts it: `[[queues.producers]]` and
//! `[[queues.consumers]]` in `edge.toml`, one `queues.redb` per node, a consumer task per
//! consumed queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_binding::{
    AppInfo, Binding, Claim, ConfigIssue, Declared, Host, NodeStore, Section, StoreError,
};
use serde::Deserialize;
use tokio::sync::watch;

use crate::backend::QueueBackend;
use crate::consumer::{self, Consumer};
use crate::rules;
use crate::store::QueueStore;

/// Most queues one app may consume (each has a consumer task on the node).
pub const MAX_CONSUMERS: usize = 20;

/// The queue binding, with the operator's settings. A queue is node-wide by name: any app
/// may produce to it; exactly one consumes it.
#[derive(Clone, Debug, Default)]
pub struct Queues {
    /// Most body bytes one queue may hold (waiting or in flight); `None` for no bound. A send
    /// past it fails, so a producer cannot fill the node's disk.
    pub queue_quota: Option<u64>,
}

/// One entry of an app's `[queues]`.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueEntry {
    /// `[[queues.producers]]`: `env.<binding>.send(…)` appends to `queue`.
    Producer {
        /// The queue.
        queue: String,
        /// Seconds every message sent through this binding waits before delivery, unless a
        /// send says otherwise (`delivery_delay`).
        delivery_delay: u32,
    },
    /// `[[queues.consumers]]`: the app's `queue` handler takes `queue`'s batches.
    Consumer(ConsumerSettings),
}

/// How an app consumes a queue.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerSettings {
    /// The queue.
    pub queue: String,
    /// Most messages per batch (1–100, default 10).
    pub max_batch_size: u32,
    /// Longest wait for a batch to fill once a message waits (0–60 s, default 5).
    pub max_batch_timeout: Duration,
    /// Deliveries after the first before a message is given up (0–100, default 3).
    pub max_retries: u32,
    /// Where given-up messages go; without one they are dropped with a log line.
    pub dead_letter_queue: Option<String>,
    /// Seconds a retried message waits by default (0–86400, default 0).
    pub retry_delay: u32,
    /// Batches in flight at once (1–20, default 1).
    pub max_concurrency: u32,
}

/// A node's queues: the store and a consumer per consumed queue.
pub struct QueueNode {
    store: Arc<dyn QueueBackend>,
    consumers: Mutex<HashMap<String, watch::Sender<Option<Consumer>>>>,
}

impl QueueNode {
    /// The node's store.
    pub fn store(&self) -> &Arc<dyn QueueBackend> {
        &self.store
    }
}

/// What one app's code is handed: its producers' queues by binding index (`None` at the
/// index of a consumer entry), on the node's store.
#[derive(Clone, Default)]
pub struct QueueBindings {
    producers: Vec<Option<(String, u32)>>,
    store: Option<Arc<dyn QueueBackend>>,
    pending: Pending,
}

/// Body bytes of an app's sends not yet durable (they wait outside the engine's heap), and
/// how many may wait: the app's memory limit. Shared by the app's isolates.
#[derive(Clone)]
struct Pending {
    bytes: Arc<std::sync::atomic::AtomicU64>,
    limit: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Self {
            bytes: Arc::default(),
            limit: u64::MAX,
        }
    }
}

/// Send bytes counted as waiting until dropped.
pub struct PendingSend {
    bytes: Arc<std::sync::atomic::AtomicU64>,
    len: u64,
}

impl Drop for PendingSend {
    fn drop(&mut self) {
        self.bytes
            .fetch_sub(self.len, std::sync::atomic::Ordering::AcqRel);
    }
}

impl QueueBindings {
    /// Counts `len` bytes as a send waiting to be durable until the guard drops; fails when
    /// the app already has its memory limit's worth waiting (one send always goes through
    /// when nothing waits).
    pub fn reserve(&self, len: u64) -> Result<PendingSend, crate::QueueError> {
        use std::sync::atomic::Ordering;
        let limit = self.pending.limit;
        self.pending
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now == 0 || now.saturating_add(len) <= limit).then(|| now.saturating_add(len))
            })
            .map_err(|now| {
                crate::QueueError::Rule(format!(
                    "{now} bytes of this app's sends are still being written; at most {limit} (the app's memory limit) may wait: await your sends"
                ))
            })?;
        Ok(PendingSend {
            bytes: self.pending.bytes.clone(),
            len,
        })
    }

    /// The queue and default delay of the producer at `index`, with the store.
    pub fn producer(
        &self,
        index: u32,
    ) -> Result<(&str, u32, &Arc<dyn QueueBackend>), crate::QueueError> {
        match (self.producers.get(index as usize), &self.store) {
            (Some(Some((queue, delay))), Some(store)) => Ok((queue, *delay, store)),
            _ => Err(crate::QueueError::NotBound(index)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueues {
    #[serde(default)]
    producers: Vec<RawProducer>,
    #[serde(default)]
    consumers: Vec<RawConsumer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProducer {
    binding: Option<String>,
    queue: Option<String>,
    delivery_delay: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    queue: Option<String>,
    max_batch_size: Option<u32>,
    max_batch_timeout: Option<f64>,
    max_retries: Option<u32>,
    dead_letter_queue: Option<String>,
    retry_delay: Option<u32>,
    max_concurrency: Option<u32>,
}

fn queue_name(name: Option<String>, key: &str) -> Result<String, ConfigIssue> {
    let name = name.ok_or_else(|| {
        ConfigIssue::invalid(key, "missing: the queue's name, e.g. queue = \"jobs\"")
    })?;
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigIssue::invalid(
            key,
            format!("{name:?} is not valid: use 1 to 63 letters, digits, `-` or `_`"),
        ));
    }
    Ok(name)
}

fn within(
    value: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
    key: &str,
) -> Result<u32, ConfigIssue> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(ConfigIssue::invalid(
            key,
            format!("{v} is out of range: use {min} to {max}"),
        ));
    }
    Ok(v)
}

impl Binding for Queues {
    type Entry = QueueEntry;
    type Node = QueueNode;
    type App = QueueBindings;

    fn kind(&self) -> &'static str {
        "queue"
    }

    fn config_key(&self) -> Option<&'static str> {
        Some("queues")
    }

    fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<QueueEntry>>, ConfigIssue> {
        let raw: RawQueues = section.deserialize()?;
        let mut out = Vec::new();
        for (i, p) in raw.producers.into_iter().enumerate() {
            let key = |f: &str| format!("queues.producers[{i}].{f}");
            let name = p.binding.ok_or_else(|| {
                ConfigIssue::invalid(
                    key("binding"),
                    "missing: the name on `env`, e.g. binding = \"JOBS\"",
                )
            })?;
            let queue = queue_name(p.queue, &key("queue"))?;
            let delivery_delay = within(
                p.delivery_delay,
                0,
                0,
                rules::MAX_DELAY_SECS,
                &key("delivery_delay"),
            )?;
            out.push(Declared {
                name: Some(name),
                name_key: key("binding"),
                entry: QueueEntry::Producer {
                    queue,
                    delivery_delay,
                },
            });
        }
        if raw.consumers.len() > MAX_CONSUMERS {
            return Err(ConfigIssue::invalid(
                "queues.consumers",
                format!(
                    "{} consumers; an app may consume at most {MAX_CONSUMERS} queues",
                    raw.consumers.len()
                ),
            ));
        }
        let mut consumed: Vec<String> = Vec::new();
        for (i, c) in raw.consumers.into_iter().enumerate() {
            let key = |f: &str| format!("queues.consumers[{i}].{f}");
            let queue = queue_name(c.queue, &key("queue"))?;
            if consumed.contains(&queue) {
                return Err(ConfigIssue::invalid(
                    key("queue"),
                    format!("{queue:?} is consumed twice"),
                ));
            }
            consumed.push(queue.clone());
            let timeout = c.max_batch_timeout.unwrap_or(5.0);
            if !(0.0..=60.0).contains(&timeout) {
                return Err(ConfigIssue::invalid(
                    key("max_batch_timeout"),
                    format!("{timeout} is out of range: use 0 to 60 (seconds)"),
                ));
            }
            let dead_letter_queue = match c.dead_letter_queue {
                Some(dlq) => {
                    let dlq = queue_name(Some(dlq), &key("dead_letter_queue"))?;
                    if dlq == queue {
                        return Err(ConfigIssue::invalid(
                            key("dead_letter_queue"),
                            "a queue cannot be its own dead-letter queue",
                        ));
                    }
                    Some(dlq)
                }
                None => None,
            };
            let settings = ConsumerSettings {
                max_batch_size: within(
                    c.max_batch_size,
                    10,
                    1,
                    rules::MAX_BATCH_SIZE,
                    &key("max_batch_size"),
                )?,
                max_batch_timeout: Duration::from_secs_f64(timeout),
                max_retries: within(c.max_retries, 3, 0, 100, &key("max_retries"))?,
                retry_delay: within(
                    c.retry_delay,
                    0,
                    0,
                    rules::MAX_DELAY_SECS,
                    &key("retry_delay"),
                )?,
                max_concurrency: within(c.max_concurrency, 1, 1, 20, &key("max_concurrency"))?,
                dead_letter_queue,
                queue,
            };
            out.push(Declared {
                name: None,
                name_key: key("queue"),
                entry: QueueEntry::Consumer(settings),
            });
        }
        Ok(out)
    }

    fn claim(&self, entry: &QueueEntry) -> Option<Claim> {
        match entry {
            QueueEntry::Consumer(c) => Some(Claim {
                resource: c.queue.clone(),
                shared: false,
            }),
            QueueEntry::Producer { .. } => None,
        }
    }

    fn claimed(&self, queue: &str, owner: &str) -> String {
        format!(
            "queue {queue:?} is already consumed by app {owner:?}; a queue has exactly one consumer"
        )
    }

    fn open(&self, store: &NodeStore) -> Result<QueueNode, StoreError> {
        let store: Arc<dyn QueueBackend> = match store.dir() {
            Some(dir) => {
                let path = QueueStore::file_in(dir);
                let opened = QueueStore::open(&path, self.queue_quota)?;
                tracing::info!(path = %path.display(), "queue store open");
                Arc::new(opened)
            }
            None => Arc::new(QueueStore::memory().with_quota(self.queue_quota)),
        };
        Ok(QueueNode {
            store,
            consumers: Mutex::default(),
        })
    }

    fn configure(
        &self,
        node: &Arc<QueueNode>,
        app: &AppInfo<'_>,
        entries: &[&QueueEntry],
    ) -> QueueBindings {
        QueueBindings {
            pending: Pending {
                bytes: Arc::default(),
                limit: app.memory_limit,
            },
            producers: entries
                .iter()
                .map(|e| match e {
                    QueueEntry::Producer {
                        queue,
                        delivery_delay,
                    } => Some((queue.clone(), *delivery_delay)),
                    QueueEntry::Consumer(_) => None,
                })
                .collect(),
            store: Some(node.store.clone()),
        }
    }

    fn attach(
        &self,
        node: &Arc<QueueNode>,
        apps: &[(&str, Vec<&QueueEntry>)],
        host: &Arc<dyn Host>,
    ) {
        let wanted: HashMap<String, Consumer> = apps
            .iter()
            .flat_map(|(app, entries)| {
                entries.iter().filter_map(move |e| match e {
                    QueueEntry::Consumer(settings) => Some((
                        settings.queue.clone(),
                        Consumer {
                            app: app.to_string(),
                            settings: settings.clone(),
                        },
                    )),
                    QueueEntry::Producer { .. } => None,
                })
            })
            .collect();
        let mut consumers = node.consumers.lock().unwrap_or_else(|p| p.into_inner());
        consumers.retain(|queue, tx| {
            let keep = wanted.contains_key(queue);
            if !keep {
                tx.send_replace(None);
            }
            keep
        });
        for (queue, consumer) in wanted {
            match consumers.get(&queue) {
                Some(tx) => {
                    tx.send_if_modified(|current| {
                        let changed = current.as_ref() != Some(&consumer);
                        if changed {
                            *current = Some(consumer.clone());
                        }
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(Some(consumer));
                    tokio::spawn(consumer::run(
                        queue.clone(),
                        rx,
                        node.store.clone(),
                        host.clone(),
                    ));
                    consumers.insert(queue, tx);
                }
            }
        }
    }

    fn admin(
        &self,
        node: &Arc<QueueNode>,
        request: &mut edge_binding::admin::AdminRequest,
    ) -> Option<edge_binding::admin::AdminFuture> {
        crate::admin::route(node.clone(), request)
    }

    fn metrics(&self, node: &Arc<QueueNode>) -> Vec<edge_binding::MetricSample> {
        let mut samples = Vec::new();
        for q in node.store.stats() {
            for (state, n) in [
                ("ready", q.ready),
                ("delayed", q.delayed),
                ("in_flight", q.in_flight),
            ] {
                samples.push(edge_binding::MetricSample {
                    name: "edge_queue_messages",
                    help: "Messages in a queue (a dead-letter queue is a queue too), by state: ready to deliver, waiting for a delay, delivered and not yet settled.",
                    kind: edge_binding::MetricKind::Gauge,
                    labels: vec![("queue", q.queue.clone()), ("state", state.to_string())],
                    value: n as f64,
                });
            }
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_waiting_to_be_durable_are_bounded_by_the_memory_limit() {
        let b = QueueBindings {
            pending: Pending {
                bytes: Arc::default(),
                limit: 100,
            },
            ..QueueBindings::default()
        };
        let first = b.reserve(80).unwrap();
        let e = b.reserve(30).err().unwrap();
        assert!(e.to_string().contains("await your sends"), "{e}");
        let small = b.reserve(20).unwrap();
        drop((first, small));
        // Alone, one send always goes through, whatever its size.
        let big = b.reserve(500).unwrap();
        assert!(b.reserve(1).is_err());
        drop(big);
        assert!(b.reserve(1).is_ok());
    }
}
