//! Requests in flight at the front door, so a stopping node can let them finish: a request
//! counts from when its head is read until its response body has been sent (or the client
//! went away), streamed bodies included.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// The node's requests in flight.
#[derive(Default, Debug)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// A request starts; it counts until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once no request is in flight.
    pub async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a request ending in between is not missed.
            idle.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One request in flight, until dropped.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted, and the overload slots it holds taken,
/// until it is done or dropped.
pub struct Counted<B> {
    body: B,
    _guard: InFlightGuard,
    _slots: Option<super::overload::Slots>,
}

impl<B> Counted<B> {
    /// `body`, counted by `guard`, holding `slots`.
    pub fn new(body: B, guard: InFlightGuard, slots: Option<super::overload::Slots>) -> Self {
        Self {
            body,
            _guard: guard,
            _slots: slots,
        }
    }
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drained_waits_for_the_last_guard() {
        let inflight = Arc::new(InFlight::default());
        inflight.drained().await;
        let a = inflight.begin();
        let b = inflight.begin();
        let waiter = tokio::spawn({
            let inflight = inflight.clone();
            async move { inflight.drained().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
