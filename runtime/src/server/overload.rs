//! Overload: how many requests a node, and each app, serves at once. A request past the bound
//! waits briefly in a short line (as long as the bound, at most); if no slot frees in time, or
//! the line is full, it is answered `503` with `edge-error: overloaded` and `retry-after`
//! instead of queueing without end (compare supabase edge-runtime's `request_wait_timeout_ms`).
//! An app's slots are its own, so one flooded app leaves the others' latency alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, InvokeError};

/// What a `503 overloaded` asks the client to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The slots a request holds while it is served: its app's, then the node's.
#[derive(Debug)]
pub struct Slots {
    _app: Slot,
    _node: Slot,
}

/// Takes a slot of `app`'s gate, then one of the node's (so a request waiting for its app
/// holds nothing of the node's), each waiting up to `wait`.
pub async fn admit(app: &Gate, node: &Gate, wait: Duration) -> Result<Slots, InvokeError> {
    let app = app.enter(wait).await?;
    let node = node.enter(wait).await?;
    Ok(Slots {
        _app: app,
        _node: node,
    })
}

/// A bound on requests served at once, with a short line for those past it.
#[derive(Debug)]
pub struct Gate {
    slots: Arc<Semaphore>,
    max: usize,
    waiting: AtomicUsize,
    /// Whose bound this is, for the error (`the node`, `the app "x"`).
    whose: String,
}

/// A slot held while a request is served; freed when dropped.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

impl Gate {
    /// At most `max` requests at once (and `max` more waiting), for `whose` bound it is.
    pub fn new(max: usize, whose: impl Into<String>) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            waiting: AtomicUsize::new(0),
            whose: whose.into(),
        }
    }

    /// Requests being served now.
    pub fn in_use(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A slot: at once if one is free, else after waiting up to `wait` in line; an
    /// `overloaded` error if the line is full or the wait ran out.
    pub async fn enter(&self, wait: Duration) -> Result<Slot, InvokeError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(self.overloaded("and its line of waiting requests is full"));
        }
        let acquired = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            // The semaphore is never closed.
            Ok(Err(_)) => Err(self.overloaded("")),
            Err(_) => {
                Err(self.overloaded(&format!("and no slot freed within {} ms", wait.as_millis())))
            }
        }
    }

    fn overloaded(&self, detail: &str) -> InvokeError {
        let mut message = format!(
            "{} is serving as many requests as it may at once ({})",
            self.whose, self.max
        );
        if !detail.is_empty() {
            message.push(' ');
            message.push_str(detail);
        }
        message.push_str("; retry shortly");
        InvokeError::new(ErrorCode::Overloaded, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_lines_up_then_turns_away() {
        let gate = Arc::new(Gate::new(2, "the app \"x\""));
        let a = gate.enter(Duration::ZERO).await.unwrap();
        let _b = gate.enter(Duration::ZERO).await.unwrap();
        assert_eq!(gate.in_use(), 2);

        // Two may wait; the third is turned away at once.
        let w1 = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(Duration::from_secs(30)).await.map(|_| ()) }
        });
        let w2 = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(Duration::from_secs(30)).await.map(|_| ()) }
        });
        while gate.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        let e = gate.enter(Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Overloaded);
        assert!(e.message.contains("line"), "{}", e.message);

        // A freed slot goes to one waiting.
        drop(a);
        let first = tokio::select! {
            r = w1 => r,
            r = w2 => r,
        };
        first.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_wait_runs_out() {
        let gate = Gate::new(1, "the node");
        let _a = gate.enter(Duration::ZERO).await.unwrap();
        let e = gate.enter(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Overloaded);
        assert!(e.message.contains("20 ms"), "{}", e.message);
        assert_eq!(gate.waiting(), 0);
    }
}
