//! A connection that stops taking bytes is closed: while a write makes no progress for the
//! send timeout, the connection fails with `TimedOut`, and whatever response it held (up to a
//! whole body for a client that never reads) is freed. Progress of any size resets the clock,
//! so a slow but live reader is never cut.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io`, whose writes fail once stalled for `timeout`.
pub(crate) struct SendTimeout<T> {
    io: T,
    timeout: Duration,
    /// Armed when a write could not proceed; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Set once the timeout has struck.
    timed_out: Arc<AtomicBool>,
}

impl<T> SendTimeout<T> {
    pub(crate) fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
            timed_out: Arc::default(),
        }
    }

    /// Tells, later, whether the timeout struck (the connection was closed for it).
    pub(crate) fn timed_out(&self) -> TimedOut {
        TimedOut(self.timed_out.clone())
    }

    /// After a write returned `poll`: progress clears the clock; a stall starts it (or, past
    /// the timeout, turns into an error).
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client took no response bytes for {} s",
                        timeout.as_secs_f64()
                    ),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether a [`SendTimeout`] struck.
pub(crate) struct TimedOut(Arc<AtomicBool>);

impl TimedOut {
    /// Once the connection is gone: if it was closed for taking no bytes, gives the memory it
    /// held back to the operating system (the allocator would keep a whole response body's
    /// worth per connection in its arenas).
    pub(crate) fn release_if_struck(&self) {
        if self.0.load(Ordering::Relaxed) {
            crate::limits::thread_clock::release_free_memory();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stalled_write_fails_and_a_slow_reader_does_not() {
        // A pipe with a small buffer: the writer stalls once it is full.
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = SendTimeout::new(a, Duration::from_millis(200));
        // Slow but live: 4 KiB read 256 bytes every 50 ms goes through.
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 4096];
            let mut n = 0;
            while n < got.len() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let end = (n + 256).min(got.len());
                n += b.read(&mut got[n..end]).await.unwrap();
            }
            b
        });
        w.write_all(&[1u8; 4096]).await.unwrap();
        let _b = reader.await.unwrap();
        // Nobody reads now: the write fails after the timeout.
        let err = w.write_all(&[1u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
