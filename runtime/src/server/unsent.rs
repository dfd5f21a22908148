//! HTTP/2 responses a client does not take. Over HTTP/2 a client holds back a response by
//! flow control (a stream window of zero) while it keeps reading the connection, so the
//! connection-level send timeout never sees a stall, and each stream kept a whole response
//! body: 60 such streams on one connection held 570 MB. Here a whole body is handed to the
//! HTTP/2 layer in copied chunks of [`CHUNK`] bytes, only as the client's window lets it ask for
//! more; what it has not asked for stays here, and is dropped if it goes unasked for the send
//! timeout, after which the stream fails. (A streamed body already waits for its reader: the
//! isolate's channel to it is bounded.)

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

use crate::body::{BodyError, ResponseBody};

/// Most bytes handed to the HTTP/2 layer at once (its default frame size).
const CHUNK: usize = 16 << 10;

/// Bodies of at most this size go as they are: what a stream can hold back is small.
const SMALL: usize = 64 << 10;

/// A response body for an HTTP/2 stream (see the module documentation).
pub(crate) enum Unsent {
    /// Streamed, empty or small: as it is.
    Pass(ResponseBody),
    /// A whole body, handed out in chunks and dropped if not asked for in time.
    Chunked(Arc<Mutex<Slot>>),
}

/// What is left of a whole body.
pub(crate) struct Slot {
    rest: Option<Bytes>,
    /// Asked for a chunk since the expiry task last looked.
    asked: bool,
    /// Dropped unasked: the stream fails.
    expired: Option<Duration>,
}

impl Unsent {
    /// `body`, for a stream whose client may hold it back; a whole body not asked for within
    /// `timeout` is dropped.
    pub(crate) fn new(body: ResponseBody, timeout: Duration) -> Self {
        let rest = match body {
            ResponseBody::Full(Some(b)) if b.len() > SMALL => b,
            other => return Self::Pass(other),
        };
        let slot = Arc::new(Mutex::new(Slot {
            rest: Some(rest),
            asked: false,
            expired: None,
        }));
        let weak = Arc::downgrade(&slot);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(timeout).await;
                // Gone with its stream, or sent: nothing to watch.
                let Some(slot) = weak.upgrade() else { return };
                let dropped = {
                    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.rest.is_none() {
                        return;
                    }
                    if slot.asked {
                        slot.asked = false;
                        continue;
                    }
                    slot.expired = Some(timeout);
                    slot.rest.take()
                };
                // Freed, and given back to the operating system (the allocator would keep a
                // whole body's worth in its arenas).
                drop(dropped);
                crate::limits::thread_clock::release_free_memory();
                return;
            }
        });
        Self::Chunked(slot)
    }
}

impl Body for Unsent {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let slot = match self.get_mut() {
            Self::Pass(body) => return Pin::new(body).poll_frame(cx),
            Self::Chunked(slot) => slot,
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(timeout) = slot.expired.take() {
            return Poll::Ready(Some(Err(BodyError(format!(
                "the client took none of the response for {} s",
                timeout.as_secs_f64()
            )))));
        }
        slot.asked = true;
        let Some(rest) = slot.rest.as_mut() else {
            return Poll::Ready(None);
        };
        // A copy, so that what the HTTP/2 layer holds does not keep the whole body alive.
        let n = rest.len().min(CHUNK);
        let chunk = Bytes::copy_from_slice(&rest[..n]);
        rest.advance(n);
        if rest.is_empty() {
            slot.rest = None;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Pass(body) => body.is_end_stream(),
            Self::Chunked(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Pass(body) => body.size_hint(),
            Self::Chunked(slot) => {
                let slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                SizeHint::with_exact(slot.rest.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
