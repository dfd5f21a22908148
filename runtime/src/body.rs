//! The body of a response produced by an isolate, as hyper sends it.

use std::pin::Pin;
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
    Stream(mpsc::Receiver<Result<Bytes, BodyError>>),
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
            Self::Stream(rx) => rx
                .poll_recv(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
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
