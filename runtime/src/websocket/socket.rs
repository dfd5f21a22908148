//! One WebSocket connection, from either end, driven by two tasks of its own: a reader that
//! answers pings, checks control frames, assembles whole messages (at most
//! [`MAX_MESSAGE_BYTES`], counted against the isolate's memory as they arrive) and hands them
//! over one at a time; and a writer that writes every frame — the script's messages, pongs,
//! pings, closes — in order, each within [`WRITE_TIMEOUT`], pings a quiet peer and drops a
//! dead one. Like parsing HTTP, this is the front door's work, not the tenant's: a peer's
//! control frames never run on the script's CPU budget.
//!
//! Made before the connection is there ([`Socket::new`] takes the future that yields it:
//! hyper's upgrade once the `101` is sent), so a script may send at once; the tasks start when
//! it arrives. What a socket holds for its app (its place in the counts) goes when both tasks
//! have ended, whether or not the script still holds the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocketError, WebSocketRead, WebSocketWrite};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::{Notify, mpsc};

use super::MAX_MESSAGE_BYTES;
use crate::limits::memory::IsolateMemory;

/// A connection's bytes, whatever carries them (an upgraded HTTP/1 connection, a TLS stream).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// The connection, still to come.
pub type Opening = Pin<Box<dyn Future<Output = std::io::Result<BoxStream>> + Send>>;

/// After this long with nothing from the peer, it is pinged.
const PING_AFTER: Duration = Duration::from_secs(30);

/// After this long with nothing from the peer (pings unanswered), it is taken for gone.
const GONE_AFTER: Duration = Duration::from_secs(75);

/// How long a close frame waits for its answer (ours for the peer's, or the peer's for ours)
/// before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How long the connection may take to arrive (the `101` to be written).
const OPEN_WAIT: Duration = Duration::from_secs(30);

/// How long one frame may take to write: a peer that reads nothing for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of the script's sends one socket may have waiting for the peer; a send past it fails.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;

/// Pongs (and close answers) waiting to be written, past which a peer that pings faster than
/// it reads is dropped (`1008`).
const MAX_PENDING_CONTROL: usize = 64;

/// The most a control frame (ping, pong, close) may carry (RFC 6455 §5.5).
const MAX_CONTROL_BYTES: usize = 125;

/// What reading a socket gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The peer closed the connection with a close frame. `code` is 1005 when its frame had
    /// none.
    Close {
        /// The peer's close code.
        code: u16,
        /// The peer's reason.
        reason: String,
    },
    /// The connection ended without a clean close: dropped or timed out (1006), a protocol
    /// error of the peer's (1002, 1007, 1008, 1009: a close frame with that code was sent to
    /// it), or the node closing it (1001). `error` says why, for an `error` event, when it was
    /// a failure.
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
    /// A connection that ended with `code` because of `error`.
    pub fn gone(code: u16, error: impl Into<String>) -> Self {
        Self::Gone {
            code,
            reason: String::new(),
            error: Some(error.into()),
        }
    }
}

/// Bytes counted against an isolate's memory until dropped.
pub struct Charge {
    memory: Option<Arc<IsolateMemory>>,
    bytes: usize,
}

impl Charge {
    /// Nothing held.
    pub fn none() -> Self {
        Self {
            memory: None,
            bytes: 0,
        }
    }

    /// Counts `bytes` more, if they fit.
    fn grow(&mut self, memory: &Arc<IsolateMemory>, bytes: usize) -> bool {
        if !memory.try_reserve(bytes) {
            return false;
        }
        self.memory.get_or_insert_with(|| memory.clone());
        self.bytes += bytes;
        true
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(memory) = &self.memory {
            memory.release(self.bytes);
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The socket was closed (by either end) or the connection is gone.
    #[error("the WebSocket is closed")]
    Closed,
    /// Too much is waiting for the peer already.
    #[error(
        "WebSocket send() failed: {0} MiB of messages are already waiting for the peer to read them"
    )]
    QueueFull(usize),
    /// The isolate's memory limit leaves no room for it.
    #[error("WebSocket send() failed: the message does not fit in the isolate's memory limit")]
    Memory,
}

/// A frame waiting to be written.
enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    /// An answer to the peer's ping.
    Pong(Vec<u8>),
    /// The peer's close frame, sent back (auto-close).
    Echo(Vec<u8>),
    /// A ping to a quiet peer.
    Ping,
}

/// What the two tasks and the handle share.
struct Shared {
    role: Role,
    auto_close: bool,
    memory: Arc<IsolateMemory>,
    /// When something last came from the peer.
    heard: Mutex<Instant>,
    /// When our close frame went out.
    close_sent: Mutex<Option<Instant>>,
    /// When the peer's close frame came.
    close_received: Mutex<Option<Instant>>,
    /// A close has been queued (nothing may be sent after it).
    close_queued: AtomicBool,
    /// Bytes of the script's sends waiting.
    queued: AtomicUsize,
    /// Pongs and close answers waiting.
    pending_control: AtomicUsize,
    /// The connection is over: both tasks stop.
    ended: AtomicBool,
    /// Why, when it was not a clean close.
    why: Mutex<Option<(u16, String)>>,
    /// How reading ended (the peer's close, or a failure), for the script's side once it has
    /// taken the messages before it.
    last: Mutex<Option<Received>>,
    wake: Notify,
}

impl Shared {
    fn end(&self, why: Option<(u16, String)>) {
        if let Some(why) = why {
            let mut slot = self.why.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(why);
        }
        self.ended.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    async fn ended(&self) {
        loop {
            let notified = self.wake.notified();
            if self.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn touch(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn since<T>(slot: &Mutex<T>) -> T
    where
        T: Copy,
    {
        *slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One WebSocket connection, as the script's side holds it.
pub struct Socket {
    inbox: tokio::sync::Mutex<mpsc::Receiver<(Received, Charge)>>,
    outbox: mpsc::UnboundedSender<(Out, Charge)>,
    shared: Arc<Shared>,
}

impl Socket {
    /// A socket whose connection `opening` yields; `role` says which end this is (a server
    /// reads masked frames, a client masks what it writes). With `auto_close`, the peer's
    /// close frame is answered as it arrives; without, the answer is the script's
    /// [`Socket::close`]. What it holds is counted against `memory`; `keep` is dropped when
    /// the connection is over (what counts the socket). Must be called within the isolate's
    /// runtime: it spawns the socket's tasks.
    pub fn new(
        role: Role,
        auto_close: bool,
        opening: Opening,
        memory: Arc<IsolateMemory>,
        keep: Box<dyn Send>,
    ) -> Self {
        let (inbox_tx, inbox) = mpsc::channel(1);
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            role,
            auto_close,
            memory,
            heard: Mutex::new(Instant::now()),
            close_sent: Mutex::new(None),
            close_received: Mutex::new(None),
            close_queued: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            pending_control: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            why: Mutex::new(None),
            last: Mutex::new(None),
            wake: Notify::new(),
        });
        tokio::spawn(run(opening, shared.clone(), inbox_tx, outbox_rx, keep));
        Self {
            inbox: tokio::sync::Mutex::new(inbox),
            outbox,
            shared,
        }
    }

    /// The next message (with what it holds of the isolate's memory, until dropped), or how
    /// the connection ended. After a `Close` or `Gone`, every call gives `Gone`. Cancel-safe.
    pub async fn next(&self) -> (Received, Charge) {
        let mut inbox = self.inbox.lock().await;
        match inbox.recv().await {
            Some(got) => got,
            None => {
                let last = self
                    .shared
                    .last
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some(last) = last {
                    return (last, Charge::none());
                }
                let why = self
                    .shared
                    .why
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let (code, error) = why.unwrap_or((1006, "the WebSocket is closed".into()));
                (Received::gone(code, error), Charge::none())
            }
        }
    }

    /// Queues a text message.
    pub fn send_text(&self, text: String) -> Result<(), SendError> {
        let len = text.len();
        self.queue(Out::Text(text), len)
    }

    /// Queues a binary message.
    pub fn send_binary(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        let len = bytes.len();
        self.queue(Out::Binary(bytes), len)
    }

    fn queue(&self, out: Out, len: usize) -> Result<(), SendError> {
        let shared = &self.shared;
        if shared.close_queued.load(Ordering::Acquire) || shared.ended.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let queued = shared.queued.load(Ordering::Acquire);
        if queued + len > MAX_QUEUED_BYTES {
            return Err(SendError::QueueFull(queued >> 20));
        }
        let mut charge = Charge::none();
        if !charge.grow(&shared.memory, len) {
            return Err(SendError::Memory);
        }
        shared.queued.fetch_add(len, Ordering::AcqRel);
        self.outbox
            .send((out, charge))
            .map_err(|_| SendError::Closed)
    }

    /// Queues a close frame after what is queued (no code when `code` is 0; the reason cut to
    /// [`MAX_CLOSE_REASON_BYTES`](super::MAX_CLOSE_REASON_BYTES) at a character boundary). The
    /// peer's answer comes through [`Socket::next`] as `Close`. A second close sends nothing.
    pub fn close(&self, code: u16, reason: &str) {
        if self.shared.close_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut end = reason.len().min(super::MAX_CLOSE_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self
            .outbox
            .send((Out::Close(code, reason[..end].to_string()), Charge::none()));
    }

    /// Drops the connection at once, without a close frame; what is queued is not sent.
    pub fn abort(&self) {
        self.shared.close_queued.store(true, Ordering::Release);
        self.shared
            .end(Some((1006, "the connection was dropped".into())));
    }
}

type Reader = WebSocketRead<ReadHalf<BoxStream>>;
type Writer = WebSocketWrite<WriteHalf<BoxStream>>;

/// The socket's life: wait for the connection, then read and write until it is over.
async fn run(
    opening: Opening,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<(Received, Charge)>,
    outbox: mpsc::UnboundedReceiver<(Out, Charge)>,
    keep: Box<dyn Send>,
) {
    // Held until the connection is over, however this ends.
    let _keep = keep;
    let stream = tokio::select! {
        opened = tokio::time::timeout(OPEN_WAIT, opening) => match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                shared.end(Some((1006, format!("the WebSocket connection could not be opened: {e}"))));
                return;
            }
            Err(_) => {
                shared.end(Some((1006, "the WebSocket upgrade did not complete in time".into())));
                return;
            }
        },
        () = shared.ended() => return,
    };
    shared.touch();
    let (read, write) = tokio::io::split(stream);
    let (mut reader, writer) = fastwebsockets::after_handshake_split(read, write, shared.role);
    // Control frames are this module's to answer (and to bound).
    reader.set_auto_close(false);
    reader.set_auto_pong(false);
    // fastwebsockets refuses a frame of this length or more, on its header.
    reader.set_max_message_size(MAX_MESSAGE_BYTES + 1);
    // The reader's own frames (pongs, close answers) go to the writer apart from the
    // script's, so that the script's side going away is seen as its channel closing.
    let (own_tx, own_rx) = mpsc::unbounded_channel();
    let reading = tokio::spawn(read_loop(reader, shared.clone(), inbox, own_tx));
    write_loop(writer, shared.clone(), outbox, own_rx).await;
    shared.end(None);
    let _ = reading.await;
}

/// Reads frames until the connection is over, handing whole messages over one at a time.
async fn read_loop(
    mut reader: Reader,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<(Received, Charge)>,
    own: mpsc::UnboundedSender<Out>,
) {
    let mut partial: Option<(bool, Vec<u8>, Charge)> = None;
    let mut nothing_owed = |_: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
    let ended = loop {
        let frame = tokio::select! {
            frame = reader.read_frame(&mut nothing_owed) => frame,
            () = shared.ended() => break None,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => break Some(failed(e)),
        };
        shared.touch();
        match frame.opcode {
            OpCode::Ping | OpCode::Pong if frame.payload.len() > MAX_CONTROL_BYTES => {
                break Some(protocol("a control frame longer than 125 bytes"));
            }
            OpCode::Ping => {
                if shared.pending_control.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_CONTROL {
                    break Some(Received::gone(1008, "the peer pings faster than it reads"));
                }
                let _ = own.send(Out::Pong(frame.payload.to_vec()));
            }
            OpCode::Pong => {}
            OpCode::Close => break Some(closed(&shared, &own, &frame.payload)),
            OpCode::Text | OpCode::Binary => {
                if partial.is_some() {
                    break Some(protocol("a new message began inside a fragmented one"));
                }
                let mut charge = Charge::none();
                if !charge.grow(&shared.memory, frame.payload.len()) {
                    break Some(no_room());
                }
                let text = frame.opcode == OpCode::Text;
                let bytes = frame.payload.to_vec();
                if frame.fin {
                    let got = message(text, bytes);
                    if deliver(&shared, &inbox, (got, charge)).await.is_err() {
                        break None;
                    }
                } else {
                    partial = Some((text, bytes, charge));
                }
            }
            OpCode::Continuation => {
                let Some((_, bytes, charge)) = partial.as_mut() else {
                    break Some(protocol("a continuation frame with no message to continue"));
                };
                if bytes.len() + frame.payload.len() > MAX_MESSAGE_BYTES {
                    break Some(too_big());
                }
                if !charge.grow(&shared.memory, frame.payload.len()) {
                    break Some(no_room());
                }
                bytes.extend_from_slice(&frame.payload);
                if frame.fin
                    && let Some((text, bytes, charge)) = partial.take()
                {
                    let got = message(text, bytes);
                    if deliver(&shared, &inbox, (got, charge)).await.is_err() {
                        break None;
                    }
                }
            }
        }
    };
    drop(partial);
    let Some(last) = ended else {
        return;
    };
    if let Received::Gone { code, error, .. } = &last {
        // The peer broke the protocol: tell it why before the connection goes.
        if matches!(code, 1002 | 1007 | 1008 | 1009) {
            shared.close_queued.store(true, Ordering::Release);
            let _ = own.send(Out::Close(*code, String::new()));
        } else {
            shared.end(Some((*code, error.clone().unwrap_or_default())));
        }
    }
    // Handed over once the messages before it are taken (the channel closes as this returns).
    *shared.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(last);
}

/// Hands `got` to the script's side, unless the connection ends first.
async fn deliver(
    shared: &Shared,
    inbox: &mpsc::Sender<(Received, Charge)>,
    got: (Received, Charge),
) -> Result<(), ()> {
    tokio::select! {
        sent = inbox.send(got) => sent.map_err(|_| ()),
        () = shared.ended() => Err(()),
    }
}

/// The peer's close frame: its code and reason (validated), answered at once with auto-close.
fn closed(shared: &Shared, own: &mpsc::UnboundedSender<Out>, payload: &[u8]) -> Received {
    if payload.len() > MAX_CONTROL_BYTES || payload.len() == 1 {
        return protocol("an invalid close frame");
    }
    let (code, reason) = match payload {
        [a, b, rest @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_receivable_close_code(code) {
                return protocol("a close frame with a code that may not be sent");
            }
            let Ok(reason) = std::str::from_utf8(rest) else {
                return Received::gone(1007, "a close reason that is not valid UTF-8");
            };
            (code, reason.to_string())
        }
        _ => (1005, String::new()),
    };
    *shared
        .close_received
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    let answered = Shared::since(&shared.close_sent).is_some();
    if answered {
        // Our close, answered: the handshake is complete.
        shared.end(None);
    } else if shared.auto_close && !shared.close_queued.swap(true, Ordering::AcqRel) {
        shared.pending_control.fetch_add(1, Ordering::AcqRel);
        let _ = own.send(Out::Echo(payload.to_vec()));
    }
    Received::Close { code, reason }
}

/// Codes a close frame may carry on the wire (RFC 6455 §7.4): 1000–1003, 1007–1011 (and the
/// 1012–1014 registered since), 3000–4999.
fn is_receivable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Writes frames in order until the socket is dropped or the connection is over; pings a
/// quiet peer and drops a dead one, or one whose close goes unanswered.
async fn write_loop(
    mut writer: Writer,
    shared: Arc<Shared>,
    mut outbox: mpsc::UnboundedReceiver<(Out, Charge)>,
    mut own: mpsc::UnboundedReceiver<Out>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pinged = false;
    let mut script_gone = false;
    loop {
        let (out, charge) = tokio::select! {
            biased;
            () = shared.ended() => break,
            Some(out) = own.recv() => (out, Charge::none()),
            out = outbox.recv(), if !script_gone => match out {
                Some(out) => out,
                // The script's side is gone, and what it queued is written: close (or wait
                // for the answer to the close it queued).
                None => {
                    script_gone = true;
                    if shared.close_queued.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    (Out::Close(1001, String::new()), Charge::none())
                }
            },
            _ = tick.tick() => {
                let quiet = Shared::since(&shared.heard).elapsed();
                let closing = Shared::since(&shared.close_sent)
                    .or(Shared::since(&shared.close_received));
                if closing.is_some_and(|at| at.elapsed() > CLOSE_WAIT) {
                    shared.end(Some((1006, "the close frame was not answered in time".into())));
                    break;
                }
                if quiet > GONE_AFTER {
                    shared.end(Some((1006, "the peer stopped answering pings".into())));
                    break;
                }
                if quiet < PING_AFTER {
                    pinged = false;
                }
                if quiet <= PING_AFTER || pinged {
                    continue;
                }
                pinged = true;
                (Out::Ping, Charge::none())
            }
        };
        let frame = match &out {
            Out::Text(text) => Frame::text(Payload::Borrowed(text.as_bytes())),
            Out::Binary(bytes) => Frame::binary(Payload::Borrowed(bytes)),
            Out::Close(0, _) => Frame::close_raw(Payload::Borrowed(&[])),
            Out::Close(code, reason) => Frame::close(*code, reason.as_bytes()),
            Out::Pong(payload) => Frame::pong(Payload::Borrowed(payload)),
            Out::Echo(payload) => Frame::close_raw(Payload::Borrowed(payload)),
            Out::Ping => Frame::new(true, OpCode::Ping, None, Payload::Borrowed(&[])),
        };
        // Nothing follows a close frame on the wire.
        let after_close = Shared::since(&shared.close_sent).is_some();
        let written = if after_close {
            Ok(Ok(()))
        } else {
            tokio::time::timeout(WRITE_TIMEOUT, writer.write_frame(frame)).await
        };
        match &out {
            Out::Text(_) | Out::Binary(_) => {
                shared.queued.fetch_sub(charge.bytes, Ordering::AcqRel);
            }
            Out::Pong(_) | Out::Echo(_) => {
                shared.pending_control.fetch_sub(1, Ordering::AcqRel);
            }
            Out::Close(..) | Out::Ping => {}
        }
        drop(charge);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shared.end(Some((
                    1006,
                    format!("writing to the WebSocket failed: {e}"),
                )));
                break;
            }
            Err(_) => {
                shared.end(Some((1006, "the peer stopped reading".into())));
                break;
            }
        }
        if !after_close && matches!(out, Out::Close(..) | Out::Echo(..)) {
            *shared.close_sent.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            if Shared::since(&shared.close_received).is_some() {
                // Both closes are out: the handshake is complete.
                break;
            }
        }
    }
    // Whatever is still queued goes unsent; its memory comes back as it drops.
    outbox.close();
    while let Ok((out, charge)) = outbox.try_recv() {
        if matches!(out, Out::Text(_) | Out::Binary(_)) {
            shared.queued.fetch_sub(charge.bytes, Ordering::AcqRel);
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

fn protocol(what: &str) -> Received {
    Received::gone(
        1002,
        format!("the peer broke the WebSocket protocol: {what}"),
    )
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

fn no_room() -> Received {
    Received::gone(1009, "a message does not fit in the isolate's memory limit")
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
        other => protocol(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
