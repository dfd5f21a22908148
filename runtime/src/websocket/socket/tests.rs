//! The socket against a fastwebsockets peer over an in-memory pipe.

use super::*;
use fastwebsockets::WebSocket;

/// A server socket over an in-memory pipe (counted against `memory`), and the client end
/// that talks to it.
fn pair_with(
    auto_close: bool,
    memory: Arc<IsolateMemory>,
) -> (Socket, WebSocket<tokio::io::DuplexStream>) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let opening: Opening = Box::pin(async move { Ok(Box::new(ours) as BoxStream) });
    let mut peer = WebSocket::after_handshake(theirs, Role::Client);
    // The peer answers our closes itself only where a test says so.
    peer.set_auto_close(false);
    let socket = Socket::new(Role::Server, auto_close, opening, memory, Box::new(()));
    (socket, peer)
}

fn pair(auto_close: bool) -> (Socket, WebSocket<tokio::io::DuplexStream>) {
    pair_with(auto_close, IsolateMemory::new(128 << 20))
}

fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Frame<'_> {
    Frame::new(fin, opcode, None, Payload::Borrowed(payload))
}

fn code_of(frame: &Frame<'_>) -> u16 {
    u16::from_be_bytes([frame.payload[0], frame.payload[1]])
}

#[tokio::test]
async fn fragments_are_assembled_into_one_message_counted_while_held() {
    let memory = IsolateMemory::new(128 << 20);
    let (socket, mut peer) = pair_with(true, memory.clone());
    peer.write_frame(frame(false, OpCode::Text, b"he"))
        .await
        .unwrap();
    peer.write_frame(frame(true, OpCode::Continuation, b"llo"))
        .await
        .unwrap();
    peer.write_frame(frame(true, OpCode::Binary, &[1, 2]))
        .await
        .unwrap();
    let (got, charge) = socket.next().await;
    assert_eq!(got, Received::Text("hello".into()));
    assert!(memory.buffers() >= 5, "{}", memory.buffers());
    drop(charge);
    let (got, charge) = socket.next().await;
    assert_eq!(got, Received::Binary(vec![1, 2]));
    drop(charge);
    assert_eq!(memory.buffers(), 0);
}

#[tokio::test]
async fn a_message_past_the_limit_in_fragments_is_closed_with_1009() {
    let (socket, mut peer) = pair(true);
    let half = vec![b'x'; MAX_MESSAGE_BYTES / 2 + 1];
    let frames = async {
        peer.write_frame(frame(false, OpCode::Binary, &half))
            .await
            .unwrap();
        peer.write_frame(frame(true, OpCode::Continuation, &half))
            .await
            .unwrap();
        peer.read_frame().await.unwrap().payload.to_vec()
    };
    let (close, (got, _)) = tokio::join!(frames, socket.next());
    assert!(matches!(got, Received::Gone { code: 1009, .. }), "{got:?}");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1009);
}

#[tokio::test]
async fn a_message_that_does_not_fit_in_memory_is_closed_with_1009() {
    let (socket, mut peer) = pair_with(true, IsolateMemory::new(1 << 10));
    peer.write_frame(frame(true, OpCode::Binary, &[0; 4096]))
        .await
        .unwrap();
    let (got, _) = socket.next().await;
    assert!(matches!(got, Received::Gone { code: 1009, .. }), "{got:?}");
}

#[tokio::test]
async fn text_that_is_not_utf8_is_closed_with_1007() {
    let (socket, mut peer) = pair(true);
    peer.write_frame(frame(false, OpCode::Text, &[0xe2, 0x82]))
        .await
        .unwrap();
    peer.write_frame(frame(true, OpCode::Continuation, &[0x28]))
        .await
        .unwrap();
    let (got, _) = socket.next().await;
    assert!(matches!(got, Received::Gone { code: 1007, .. }), "{got:?}");
}

#[tokio::test]
async fn bad_control_frames_are_closed_with_1002() {
    for bad in [
        frame(true, OpCode::Pong, &[0; 200]),
        frame(true, OpCode::Close, &[0x03, 0xed]),
        frame(true, OpCode::Close, &[0x03]),
    ] {
        let (socket, mut peer) = pair(true);
        peer.write_frame(bad).await.unwrap();
        let (got, _) = socket.next().await;
        assert!(matches!(got, Received::Gone { code: 1002, .. }), "{got:?}");
    }
}

#[tokio::test]
async fn a_peers_close_is_answered_only_with_auto_close() {
    for auto_close in [true, false] {
        let (socket, mut peer) = pair(auto_close);
        peer.write_frame(Frame::close(4001, b"bye")).await.unwrap();
        let (got, _) = socket.next().await;
        assert_eq!(
            got,
            Received::Close {
                code: 4001,
                reason: "bye".into()
            }
        );
        if !auto_close {
            // The script answers, with its own code.
            socket.close(1000, "answered");
        }
        let answer = peer.read_frame().await.unwrap();
        assert_eq!(answer.opcode, OpCode::Close);
        let want = if auto_close { 4001 } else { 1000 };
        assert_eq!(code_of(&answer), want);
    }
}

#[tokio::test]
async fn sends_go_out_in_order_and_a_long_reason_is_cut() {
    let (socket, mut peer) = pair(true);
    socket.send_text("one".into()).unwrap();
    socket.send_binary(vec![2]).unwrap();
    socket.close(1000, &"é".repeat(100));
    assert!(matches!(
        socket.send_text("late".into()),
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
async fn sends_to_a_peer_that_does_not_read_are_bounded() {
    let memory = IsolateMemory::new(256 << 20);
    let (socket, _peer) = pair_with(true, memory.clone());
    let mib = vec![0u8; 1 << 20];
    let mut sent = 0;
    let refused = loop {
        match socket.send_binary(mib.clone()) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 64, "the queue should be bounded");
    };
    assert!(matches!(refused, SendError::QueueFull(_)), "{refused:?}");
    assert!(memory.buffers() <= MAX_QUEUED_BYTES);
    // What is queued is counted against the memory limit, and comes back with the socket.
    socket.abort();
    drop(socket);
    for _ in 0..100 {
        if memory.buffers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(memory.buffers(), 0);
}

#[tokio::test]
async fn a_peer_that_pings_without_reading_is_closed_with_1008() {
    let (socket, mut peer) = pair(true);
    let pings = async {
        for _ in 0..100_000 {
            if peer
                .write_frame(frame(true, OpCode::Ping, &[]))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let (got, _) = tokio::select! {
        got = socket.next() => got,
        () = pings => panic!("the pinging peer should have been stopped"),
    };
    assert!(matches!(got, Received::Gone { code: 1008, .. }), "{got:?}");
}

#[tokio::test]
async fn dropping_the_socket_closes_with_1001_and_aborting_cuts() {
    let (socket, mut peer) = pair(true);
    socket.send_text("last".into()).unwrap();
    drop(socket);
    assert_eq!(&peer.read_frame().await.unwrap().payload[..], b"last");
    let close = peer.read_frame().await.unwrap();
    assert_eq!(code_of(&close), 1001);
    let (socket, mut peer) = pair(true);
    socket.abort();
    assert!(
        peer.read_frame().await.is_err(),
        "the connection should be cut"
    );
}
