//! The body of a response produced by an isolate, as hyper sends it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body failed half way (the script's stream threw, or the isolate went away).
#[derive(Debug, thiserror::Error)]
#[error("response body aborted: {0}")]
pub struct BodyError(pub String);

/// The body of a response: nothing, bytes known up front, or a stream fed by the isolate.
#[derive(Debug)]
pub enum ResponseBody {
    /// Bytes known when the response started (`new Response("hi")`).
    Full(Option<Bytes>),
    /// Chunks sent by the isolate as the script produces them; the channel is bounded, so a
    /// slow client slows the script down instead of filling memory.
    Stream(BodyStream),
}

/// The receiving end of a streamed body. It ends cleanly only if the sender marked it
/// complete ([`BodyEnd::complete`]); a channel that closes otherwise (the invocation was
/// stopped, its isolate went away) ends in an error, so the client sees the cut.
#[derive(Debug)]
pub struct BodyStream {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    end: Arc<End>,
}

/// How a streamed body ended, as the sending side marked it.
#[derive(Debug, Default)]
struct End {
    complete: AtomicBool,
    /// Bytes that follow everything sent through the channel (an encoder's last bytes).
    last: Mutex<Option<Bytes>>,
}

/// How the sending side says a streamed body ended as the script meant it to.
#[derive(Clone, Debug)]
pub struct BodyEnd(Arc<End>);

impl BodyEnd {
    /// The body is complete: when the channel closes, the stream ends cleanly.
    pub fn complete(&self) {
        self.0.complete.store(true, Ordering::Release);
    }

    /// The body is complete once `last` follows what was sent through the channel (the
    /// sender cannot wait for room in the channel when it ends the body).
    pub fn complete_with(&self, last: Bytes) {
        if !last.is_empty() {
            *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(last);
        }
        self.complete();
    }
}

/// A bounded channel for a streamed body: the sender, its end marker and the body.
pub fn body_channel(
    chunks: usize,
) -> (
    mpsc::Sender<Result<Bytes, BodyError>>,
    BodyEnd,
    ResponseBody,
) {
    let (tx, rx) = mpsc::channel(chunks);
    let end = Arc::new(End::default());
    (
        tx,
        BodyEnd(end.clone()),
        ResponseBody::Stream(BodyStream { rx, end }),
    )
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        Self::Full((!b.is_empty()).then_some(b))
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(stream) => match stream.rx.poll_recv(cx) {
                Poll::Ready(Some(item)) => Poll::Ready(Some(item.map(Frame::data))),
                Poll::Ready(None) if !stream.end.complete.load(Ordering::Acquire) => {
                    // Mark it so that a poll after the error ends the body.
                    stream.end.complete.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(BodyError(
                        "the response stream was cut before it ended".into(),
                    ))))
                }
                Poll::Ready(None) => {
                    let last = stream
                        .end
                        .last
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    Poll::Ready(last.map(|b| Ok(Frame::data(b))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}
