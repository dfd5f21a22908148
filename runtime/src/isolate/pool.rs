//! The warm pool: isolates restored from the snapshot ahead of need, each on its own thread
//! and waiting for an app, so a request to an app with no isolate does not wait for the
//! restore (the bulk of a cold start on the quickjs engine).
//!
//! An isolate taken from the pool is replaced in the background, one restore at a time, so
//! refilling never takes more than one core from the requests being served. Pooled isolates are
//! made with the node's default heap limit (the engine fixes it when the heap is made), so an
//! app with its own `limits.memory_mb` starts a fresh isolate instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, Weak};

use super::thread::{self, Assignment, Blank};

/// Pre-started blank isolates, shared by a node's tenants.
pub struct WarmPool {
    inner: Arc<Inner>,
}

struct Inner {
    blank: Blank,
    size: usize,
    slots: Mutex<Slots>,
    next_thread: AtomicU64,
}

#[derive(Default)]
struct Slots {
    /// Isolates made and waiting, oldest first: the sending side of each one's assignment.
    ready: VecDeque<SyncSender<Assignment>>,
    /// Isolates being made.
    starting: usize,
}

impl WarmPool {
    /// A pool that keeps `size` isolates ready, restored from `snapshot` (made with the
    /// extensions of `bindings`) with a heap limit of `memory_bytes`. Starts filling at once.
    pub fn new(
        snapshot: &'static [u8],
        bindings: edge_binding::Registry,
        memory_bytes: usize,
        size: usize,
    ) -> Self {
        let pool = Self {
            inner: Arc::new(Inner {
                blank: Blank {
                    snapshot,
                    memory_bytes,
                    bindings,
                },
                size,
                slots: Mutex::default(),
                next_thread: AtomicU64::new(1),
            }),
        };
        fill(&pool.inner);
        pool
    }

    /// How many isolates are ready now.
    pub fn ready(&self) -> usize {
        self.inner.lock().ready.len()
    }

    /// Hands `assignment` to a ready isolate if there is one with its heap limit; otherwise
    /// gives it back. Either way, the pool starts refilling.
    #[allow(
        clippy::result_large_err,
        reason = "the assignment is handed back whole to start a fresh isolate; it is moved once per isolate start, not per request"
    )]
    pub(crate) fn assign(&self, assignment: Assignment) -> Result<(), Assignment> {
        if assignment.spec.limits.memory_bytes != self.inner.blank.memory_bytes {
            return Err(assignment);
        }
        let mut assignment = assignment;
        loop {
            let next = self.inner.lock().ready.pop_front();
            let Some(isolate) = next else { break };
            let tenant = assignment.spec.app.name.clone();
            match isolate.send(assignment) {
                Ok(()) => {
                    tracing::debug!(tenant, "isolate taken from the warm pool");
                    fill(&self.inner);
                    return Ok(());
                }
                // That isolate's thread is gone (it cannot be, short of a panic): try the next.
                Err(e) => assignment = e.0,
            }
        }
        fill(&self.inner);
        Err(assignment)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts making an isolate if the pool lacks one and none is being made; each one that
/// becomes ready calls this again, until the pool is full.
fn fill(inner: &Arc<Inner>) {
    {
        let mut slots = inner.lock();
        if slots.starting > 0 || slots.ready.len() >= inner.size {
            return;
        }
        slots.starting += 1;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let starting = Starting(Arc::downgrade(inner));
    let on_ready: thread::OnReady = Box::new(move || {
        let inner = starting.0.upgrade();
        if let Some(inner) = &inner {
            let mut slots = inner.lock();
            slots.ready.push_back(tx);
            if slots.ready.len() == inner.size {
                tracing::debug!(size = inner.size, "warm pool full");
            }
        }
        drop(starting);
        if let Some(inner) = inner {
            fill(&inner);
        }
    });
    let n = inner.next_thread.fetch_add(1, Ordering::Relaxed);
    // On failure `on_ready` is dropped unrun, which gives the slot back.
    let name = format!("isolate-warm-{n}");
    if let Err(e) = thread::spawn(name, inner.blank.clone(), rx, Some(on_ready)) {
        tracing::warn!("cannot start a thread for the warm pool: {e}");
    }
}

/// One isolate being made for the pool: when dropped (made, failed or panicked), it no longer
/// counts as starting.
struct Starting(Weak<Inner>);

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            let mut slots = inner.lock();
            slots.starting = slots.starting.saturating_sub(1);
        }
    }
}
