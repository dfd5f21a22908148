//! One WebSocket connection, from either end: whole messages in (fragments assembled, at most
//! [`MAX_MESSAGE_BYTES`]), frames out, pings while the peer is quiet, and the closing handshake.
//!
//! Made before the connection is there ([`Socket::new`] takes the future that yields it: hyper's
//! upgrade once the `101` is sent), so a script may send before the upgrade completes; the
//! first read or write waits for it. Reading and writing go through separate locks, so a read
//! waiting for the peer never holds up a send; sends are written in the order they were
//! made (the write lock is fair). Single-threaded: it lives on its isolate's thread.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocketError, WebSocketRead, WebSocketWrite};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::{Mutex, OnceCell};

use super::MAX_MESSAGE_BYTES;

/// A connection's bytes, whatever carries them (an upgraded HTTP/1 connection, a TLS stream).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// The connection, still to come.
pub type Opening = Pin<Box<dyn Future<Output = std::io::Result<BoxStream>>>>;

/// After this long with nothing from the peer, it is pinged.
const PING_AFTER: Duration = Duration::from_secs(30);

/// After this long with nothing from the peer (pings unanswered), it is taken for gone.
const GONE_AFTER: Duration = Duration::from_secs(75);

/// How long a close frame we sent waits for the peer's before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How long the connection may take to arrive (the `101` to be written) before the socket
/// gives up on it.
const OPEN_WAIT: Duration = Duration::from_secs(30);

/// What reading a socket gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The peer closed the connection with a close frame (answered with ours, unless we had
    /// sent one first). `code` is 1005 when its frame had none.
    Close {
        /// The peer's close code.
        code: u16,
        /// The peer's reason.
        reason: String,
    },
    /// The connection ended without a clean close: dropped (1006), a protocol error of the
    /// peer's (1002, 1007, 1009: a close frame with that code was sent to it), or the node
    /// closing it (1001, 1012). `error` says why, for an `error` event, when it was a failure.
    Gone {
        /// The close code the script sees.
        code: u16,
        /// The close reason the script sees.
        reason: String,
        /// What went wrong, if something did.
        error: Option<String>,
    },
}

impl Received {
    fn gone(code: u16, error: impl Into<String>) -> Self {
        Self::Gone {
            code,
            reason: String::new(),
            error: Some(error.into()),
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection never arrived.
    #[error("the WebSocket connection could not be opened: {0}")]
    Open(String),
    /// The socket was closed (by either end) or the connection is gone.
    #[error("the WebSocket is closed")]
    Closed,
    /// Writing failed.
    #[error("writing to the WebSocket failed: {0}")]
    Write(String),
}

type Reader = WebSocketRead<ReadHalf<BoxStream>>;
type Writer = WebSocketWrite<WriteHalf<BoxStream>>;

/// A message being assembled from fragments.
struct Partial {
    text: bool,
    bytes: Vec<u8>,
}

/// One WebSocket connection.
pub struct Socket {
    role: Role,
    auto_close: bool,
    opening: RefCell<Option<Opening>>,
    open: OnceCell<Result<(), String>>,
    reader: Mutex<Option<(Reader, Option<Partial>)>>,
    writer: Mutex<Option<Writer>>,
    /// When something last came from the peer.
    heard: Cell<Instant>,
    /// When we sent our close frame.
    close_sent: Cell<Option<Instant>>,
}

impl Socket {
    /// A socket whose connection `opening` yields; `role` says which end this is (a server
    /// reads masked frames, a client masks what it writes). With `auto_close`, the peer's
    /// close frame is answered as it arrives; without, the answer is the script's
    /// [`Socket::close`].
    pub fn new(role: Role, auto_close: bool, opening: Opening) -> Self {
        Self {
            role,
            auto_close,
            opening: RefCell::new(Some(opening)),
            open: OnceCell::new(),
            reader: Mutex::new(None),
            writer: Mutex::new(None),
            heard: Cell::new(Instant::now()),
            close_sent: Cell::new(None),
        }
    }

    /// Waits for the connection (once; every caller sees the outcome).
    async fn opened(&self) -> Result<(), String> {
        self.open
            .get_or_init(|| async {
                let Some(opening) = self.opening.borrow_mut().take() else {
                    return Err("the connection is gone".to_string());
                };
                let stream = match tokio::time::timeout(OPEN_WAIT, opening).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err("the upgrade did not complete in time".to_string()),
                };
                let (read, write) = tokio::io::split(stream);
                let (mut reader, writer) =
                    fastwebsockets::after_handshake_split(read, write, self.role);
                reader.set_auto_close(self.auto_close);
                reader.set_auto_pong(true);
                // fastwebsockets refuses a frame of this length or more.
                reader.set_max_message_size(MAX_MESSAGE_BYTES + 1);
                *self.reader.lock().await = Some((reader, None));
                *self.writer.lock().await = Some(writer);
                self.heard.set(Instant::now());
                Ok(())
            })
            .await
            .clone()
    }

    /// Reads the next message, pinging a quiet peer on the way. Ends (with a `Gone`) when
    /// `stop` resolves first: the node is closing the socket, with `stop`'s code and reason
    /// sent to the peer (`None`: the connection is dropped without a close frame). Call it
    /// again only after a message: after `Close` or `Gone` the socket is finished and
    /// reading gives `Gone` at once.
    pub async fn next(&self, stop: impl Future<Output = Option<(u16, &'static str)>>) -> Received {
        if let Err(e) = self.opened().await {
            return Received::gone(1006, e);
        }
        let mut guard = self.reader.lock().await;
        let Some((reader, partial)) = guard.as_mut() else {
            return Received::gone(1006, "the WebSocket is closed");
        };
        let mut read = Box::pin(read_message(reader, partial, &self.writer, &self.heard));
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pinged = false;
        let outcome = loop {
            tokio::select! {
                got = &mut read => break got,
                how = &mut stop => {
                    drop(read);
                    *guard = None;
                    let Some((code, reason)) = how else {
                        self.abort();
                        return Received::gone(1006, "the connection was dropped");
                    };
                    let _ = self.close(code, reason).await;
                    return Received::Gone { code, reason: reason.to_string(), error: None };
                }
                _ = tick.tick() => {
                    let quiet = self.heard.get().elapsed();
                    if let Some(sent) = self.close_sent.get()
                        && sent.elapsed() > CLOSE_WAIT
                    {
                        break Received::gone(1006, "the peer did not answer the close frame");
                    }
                    if quiet > GONE_AFTER {
                        break Received::gone(1006, "the peer stopped answering pings");
                    }
                    if quiet > PING_AFTER && !pinged {
                        pinged = true;
                        let ping = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(&[]));
                        if let Some(writer) = self.writer.lock().await.as_mut() {
                            let _ = writer.write_frame(ping).await;
                        }
                    } else if quiet < PING_AFTER {
                        pinged = false;
                    }
                }
            }
        };
        drop(read);
        if matches!(outcome, Received::Close { .. } | Received::Gone { .. }) {
            // Finished: drop the reading half; the writer goes when the socket does.
            *guard = None;
            if let Received::Gone { code, .. } = &outcome
                && matches!(code, 1002 | 1007 | 1009)
            {
                let _ = self.close(*code, "").await;
            }
        }
        outcome
    }

    /// Drops the connection at once, without a close frame: both halves go (the reading half
    /// as soon as a pending [`Socket::next`] lets go of it).
    pub fn abort(&self) {
        if let Ok(mut writer) = self.writer.try_lock() {
            *writer = None;
        }
        if let Ok(mut reader) = self.reader.try_lock() {
            *reader = None;
        }
        self.opening.borrow_mut().take();
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: String) -> Result<(), SendError> {
        self.write(Frame::text(Payload::Owned(text.into_bytes())))
            .await
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        self.write(Frame::binary(Payload::Owned(bytes))).await
    }

    /// Sends a close frame (with no code when `code` is 0; the reason cut to
    /// [`MAX_CLOSE_REASON_BYTES`](super::MAX_CLOSE_REASON_BYTES) at a character boundary); the
    /// peer's answer ends a pending [`Socket::next`] with `Close`. A second close sends nothing.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SendError> {
        let mut end = reason.len().min(super::MAX_CLOSE_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let frame = if code == 0 {
            Frame::close_raw(Payload::Borrowed(&[]))
        } else {
            Frame::close(code, &reason.as_bytes()[..end])
        };
        self.opened().await.map_err(SendError::Open)?;
        let mut writer = self.writer.lock().await;
        let Some(w) = writer.as_mut() else {
            return Ok(());
        };
        if w.is_closed() {
            return Ok(());
        }
        self.close_sent.set(Some(Instant::now()));
        let out = w.write_frame(frame).await;
        out.map_err(|e| SendError::Write(e.to_string()))
    }

    async fn write(&self, frame: Frame<'_>) -> Result<(), SendError> {
        self.opened().await.map_err(SendError::Open)?;
        let mut writer = self.writer.lock().await;
        let Some(w) = writer.as_mut() else {
            return Err(SendError::Closed);
        };
        if w.is_closed() {
            return Err(SendError::Closed);
        }
        let out = w.write_frame(frame).await;
        if out.is_err() {
            *writer = None;
        }
        out.map_err(|e| SendError::Write(e.to_string()))
    }
}

/// Reads frames until a whole message, a close or a failure.
async fn read_message(
    reader: &mut Reader,
    partial: &mut Option<Partial>,
    writer: &Mutex<Option<Writer>>,
    heard: &Cell<Instant>,
) -> Received {
    // Answers fastwebsockets owes the peer (pongs, the close echo): written unless we have
    // already sent our own close frame.
    let mut obligated = |frame: Frame<'static>| async move {
        let mut writer = writer.lock().await;
        match writer.as_mut() {
            Some(w) if !w.is_closed() => w.write_frame(frame).await,
            _ => Ok(()),
        }
    };
    loop {
        let frame = match reader.read_frame(&mut obligated).await {
            Ok(frame) => frame,
            Err(e) => return failed(e),
        };
        heard.set(Instant::now());
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                if partial.is_some() {
                    return Received::gone(1002, "a new message began inside a fragmented one");
                }
                let text = frame.opcode == OpCode::Text;
                let bytes = frame.payload.to_owned();
                if frame.fin {
                    return message(text, bytes);
                }
                *partial = Some(Partial { text, bytes });
            }
            OpCode::Continuation => {
                let Some(p) = partial.as_mut() else {
                    return Received::gone(
                        1002,
                        "a continuation frame with no message to continue",
                    );
                };
                if p.bytes.len() + frame.payload.len() > MAX_MESSAGE_BYTES {
                    return too_big();
                }
                p.bytes.extend_from_slice(&frame.payload);
                if frame.fin {
                    let Some(Partial { text, bytes }) = partial.take() else {
                        continue;
                    };
                    return message(text, bytes);
                }
            }
            OpCode::Close => {
                let payload: &[u8] = &frame.payload;
                let (code, reason) = match payload {
                    [a, b, rest @ ..] => (
                        u16::from_be_bytes([*a, *b]),
                        String::from_utf8_lossy(rest).into_owned(),
                    ),
                    _ => (1005, String::new()),
                };
                return Received::Close { code, reason };
            }
            // Pongs (and pings, answered already) only show the peer is there.
            OpCode::Ping | OpCode::Pong => {}
        }
    }
}

fn message(text: bool, bytes: Vec<u8>) -> Received {
    if !text {
        return Received::Binary(bytes);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Received::Text(text),
        Err(_) => Received::gone(1007, "a text message was not valid UTF-8"),
    }
}

fn too_big() -> Received {
    Received::gone(
        1009,
        format!(
            "the peer sent a message larger than {} MiB",
            MAX_MESSAGE_BYTES >> 20
        ),
    )
}

fn failed(e: WebSocketError) -> Received {
    match e {
        WebSocketError::FrameTooLarge => too_big(),
        WebSocketError::InvalidUTF8 => Received::gone(1007, "a text message was not valid UTF-8"),
        WebSocketError::UnexpectedEOF
        | WebSocketError::IoError(_)
        | WebSocketError::ConnectionClosed => {
            Received::gone(1006, "WebSocket disconnected without sending Close frame.")
        }
        other => Received::gone(
            1002,
            format!("the peer broke the WebSocket protocol: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastwebsockets::WebSocket;

    /// A server socket over an in-memory pipe, and the client end that talks to it.
    fn pair(auto_close: bool) -> (Socket, WebSocket<tokio::io::DuplexStream>) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let opening: Opening = Box::pin(async move { Ok(Box::new(ours) as BoxStream) });
        let peer = WebSocket::after_handshake(theirs, Role::Client);
        (Socket::new(Role::Server, auto_close, opening), peer)
    }

    fn never() -> impl Future<Output = Option<(u16, &'static str)>> {
        std::future::pending()
    }

    #[tokio::test]
    async fn fragments_are_assembled_into_one_message() {
        let (socket, mut peer) = pair(true);
        let frames = async {
            peer.write_frame(Frame::new(
                false,
                OpCode::Text,
                None,
                Payload::Borrowed(b"he"),
            ))
            .await
            .unwrap();
            peer.write_frame(Frame::new(
                true,
                OpCode::Continuation,
                None,
                Payload::Borrowed(b"llo"),
            ))
            .await
            .unwrap();
            peer.write_frame(Frame::binary(Payload::Borrowed(&[1, 2])))
                .await
                .unwrap();
        };
        let (_, got) = tokio::join!(frames, socket.next(never()));
        assert_eq!(got, Received::Text("hello".into()));
        assert_eq!(socket.next(never()).await, Received::Binary(vec![1, 2]));
    }

    #[tokio::test]
    async fn a_message_past_the_limit_in_fragments_is_closed_with_1009() {
        let (socket, mut peer) = pair(true);
        let half = vec![b'x'; MAX_MESSAGE_BYTES / 2 + 1];
        let frames = async {
            peer.write_frame(Frame::new(
                false,
                OpCode::Binary,
                None,
                Payload::Borrowed(&half),
            ))
            .await
            .unwrap();
            peer.write_frame(Frame::new(
                true,
                OpCode::Continuation,
                None,
                Payload::Borrowed(&half),
            ))
            .await
            .unwrap();
        };
        let (_, got) = tokio::join!(frames, socket.next(never()));
        assert!(matches!(got, Received::Gone { code: 1009, .. }), "{got:?}");
        let close = peer.read_frame().await.unwrap();
        assert_eq!(close.opcode, OpCode::Close);
        assert_eq!(&close.payload[..2], &1009u16.to_be_bytes());
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_closed_with_1007() {
        let (socket, mut peer) = pair(true);
        let frames = async {
            peer.write_frame(Frame::new(
                false,
                OpCode::Text,
                None,
                Payload::Borrowed(&[0xe2, 0x82]),
            ))
            .await
            .unwrap();
            peer.write_frame(Frame::new(
                true,
                OpCode::Continuation,
                None,
                Payload::Borrowed(&[0x28]),
            ))
            .await
            .unwrap();
        };
        let (_, got) = tokio::join!(frames, socket.next(never()));
        assert!(matches!(got, Received::Gone { code: 1007, .. }), "{got:?}");
    }

    #[tokio::test]
    async fn a_peers_close_is_answered_only_with_auto_close() {
        for auto_close in [true, false] {
            let (socket, mut peer) = pair(auto_close);
            peer.write_frame(Frame::close(4001, b"bye")).await.unwrap();
            assert_eq!(
                socket.next(never()).await,
                Received::Close {
                    code: 4001,
                    reason: "bye".into()
                }
            );
            if auto_close {
                let echo = peer.read_frame().await.unwrap();
                assert_eq!(echo.opcode, OpCode::Close);
                assert_eq!(&echo.payload[..], b"\x0f\xa1bye");
            } else {
                // The script answers, with its own code.
                socket.close(1000, "answered").await.unwrap();
                let answer = peer.read_frame().await.unwrap();
                assert_eq!(&answer.payload[..2], &1000u16.to_be_bytes());
            }
        }
    }

    #[tokio::test]
    async fn sends_go_out_in_order_and_a_long_reason_is_cut() {
        let (socket, mut peer) = pair(true);
        socket.send_text("one".into()).await.unwrap();
        socket.send_binary(vec![2]).await.unwrap();
        socket.close(1000, &"é".repeat(100)).await.unwrap();
        assert!(matches!(
            socket.send_text("late".into()).await,
            Err(SendError::Closed)
        ));
        let one = peer.read_frame().await.unwrap();
        assert_eq!((one.opcode, &one.payload[..]), (OpCode::Text, &b"one"[..]));
        let two = peer.read_frame().await.unwrap();
        assert_eq!((two.opcode, &two.payload[..]), (OpCode::Binary, &[2u8][..]));
        let close = peer.read_frame().await.unwrap();
        assert_eq!(close.opcode, OpCode::Close);
        // 2 bytes of code and at most 123 of reason, whole characters only.
        assert_eq!(close.payload.len(), 2 + 122);
        assert!(std::str::from_utf8(&close.payload[2..]).is_ok());
    }

    #[tokio::test]
    async fn stopping_closes_with_the_stop_code_or_drops_the_connection() {
        let (socket, mut peer) = pair(true);
        let got = socket.next(async { Some((1001, "going away")) }).await;
        assert!(
            matches!(
                got,
                Received::Gone {
                    code: 1001,
                    error: None,
                    ..
                }
            ),
            "{got:?}"
        );
        let close = peer.read_frame().await.unwrap();
        assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
        let (socket, mut peer) = pair(true);
        let got = socket.next(async { None }).await;
        assert!(matches!(got, Received::Gone { code: 1006, .. }), "{got:?}");
        drop(socket);
        assert!(
            peer.read_frame().await.is_err(),
            "the connection should be cut"
        );
    }
}
