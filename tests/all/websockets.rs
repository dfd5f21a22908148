//! WebSockets through the real binary, with an independent client (tokio-tungstenite): a
//! Worker's `WebSocketPair` answered with a `101`, messages both ways, closing from either end,
//! the API's errors, and the limits: CPU per message, the app's cap on open sockets, the
//! message size, a peer that does not read, an app replaced under its sockets.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::harness::{Edge, client, copy_dir, expected, fixture, get_json, get_text, scratch};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(edge: &Edge, path: &str) -> String {
    format!("ws://127.0.0.1:{}{path}", edge.port)
}

async fn connect(edge: &Edge, path: &str) -> Ws {
    let (ws, res) = tokio_tungstenite::connect_async(ws_url(edge, path))
        .await
        .unwrap_or_else(|e| panic!("connecting to {path}: {e}\n{}", edge.logs()));
    assert_eq!(res.status(), 101);
    ws
}

/// The next message that is not a ping or pong; `None` when the connection ended.
async fn recv(ws: &mut Ws) -> Option<Message> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("something within 20 s");
        match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

async fn recv_text(ws: &mut Ws) -> String {
    match recv(ws).await {
        Some(Message::Text(t)) => t.to_string(),
        other => panic!("wanted a text message, got {other:?}"),
    }
}

fn close_of(m: Option<Message>) -> (u16, String) {
    match m {
        Some(Message::Close(Some(frame))) => (frame.code.into(), frame.reason.to_string()),
        other => panic!("wanted a close frame, got {other:?}"),
    }
}

fn json_edge() -> Edge {
    Edge::dev("websockets")
}

/// A copy of the `websockets` fixture with its `edge.toml` changed by `edit`.
fn fixture_copy(name: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let dir = scratch(name);
    copy_dir(&fixture("websockets"), &dir);
    let toml = std::fs::read_to_string(dir.join("edge.toml")).unwrap();
    std::fs::write(dir.join("edge.toml"), edit(toml)).unwrap();
    dir
}

/// Sends `text` on an `/echo` socket and checks the echo comes back.
async fn echoes(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    assert_eq!(recv_text(ws).await, format!("echo:{text}"));
}

/// The app still answers a plain request (`ok` and its version).
async fn still_serves(edge: &Edge, version: &str) {
    let res = client().get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), format!("ok {version}"));
}

#[tokio::test]
async fn messages_go_both_ways_as_text_and_binary() {
    let edge = json_edge();
    let mut ws = connect(&edge, "/echo").await;
    echoes(&mut ws, "hi").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut ws).await, Some(Message::binary(vec![1, 2, 3])));
    let big = "é".repeat(1 << 19);
    ws.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, format!("echo:{big}"));
    ws.send(Message::text("type")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "string");
    // Work a listener leaves (a timer) still reaches the socket.
    ws.send(Message::text("later")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "from a timer");
    // What the script sent before it returned its response arrives first, in order.
    let mut hello = connect(&edge, "/hello").await;
    assert_eq!(recv_text(&mut hello).await, "hello");
    assert_eq!(recv(&mut hello).await, Some(Message::binary(vec![7, 8])));
    echoes(&mut hello, "x").await;
    // The script's own headers go out with the 101.
    let mut request = ws_url(&edge, "/protocol").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat".parse().unwrap());
    let (mut chat, res) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "chat");
    chat.send(Message::text("y")).await.unwrap();
    assert_eq!(recv_text(&mut chat).await, "echo:y");
    // Plain requests still reach the app beside the sockets.
    still_serves(&edge, "1").await;
}

/// As on Workers (checked under `wrangler dev`), a listener that throws costs its socket its
/// connection: the client sees it cut, with no close frame. The exception is logged; the
/// app's other sockets and requests carry on.
#[tokio::test]
async fn a_listener_that_throws_drops_its_connection_only() {
    let edge = json_edge();
    let mut other = connect(&edge, "/echo").await;
    let mut ws = connect(&edge, "/echo").await;
    ws.send(Message::text("throw")).await.unwrap();
    let end = recv(&mut ws).await;
    assert!(end.is_none(), "the connection should be cut, got {end:?}");
    edge.wait_for_event("a listener threw", Duration::from_secs(10));
    echoes(&mut other, "still").await;
    still_serves(&edge, "1").await;
}

#[tokio::test]
async fn either_end_closes_cleanly_and_a_drop_is_1006() {
    let edge = json_edge();
    // The script closes: its code and reason reach the client, which answers.
    let mut ws = connect(&edge, "/echo").await;
    ws.send(Message::text("close")).await.unwrap();
    assert_eq!(
        close_of(recv(&mut ws).await),
        (4001, "asked to".to_string())
    );
    // Reading on lets the client send its answer; then the connection ends.
    assert_eq!(recv(&mut ws).await, None);
    // The client's answer ends it: the script's close event has the code the client answered.
    edge.wait_for_event("closed code=4001", Duration::from_secs(10));
    // The client closes: the script sees its code and reason, and answers (the fixture's
    // compatibility date is before Workers answered on their own).
    let mut ws = connect(&edge, "/echo").await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4321),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        close_of(recv(&mut ws).await),
        (1000, "answered".to_string())
    );
    edge.wait_for_event(
        "closed code=4321 reason=bye clean=true",
        Duration::from_secs(10),
    );
    // The client goes away without a close frame.
    let ws = connect(&edge, "/echo").await;
    drop(ws);
    edge.wait_for_event(
        "closed code=1006 reason= clean=false",
        Duration::from_secs(10),
    );
}

/// The API's answers, checked against `wrangler dev` (workerd): `expect.json`.
#[tokio::test]
async fn the_websocket_api_answers_as_workers_does() {
    let edge = Edge::dev("websockets");
    let res = client().get(edge.url("/api")).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", edge.logs());
    let got: serde_json::Value = res.json().await.unwrap();
    let want = &expected("websockets")["routes"]["/api"];
    assert_eq!(&got, want, "\n got  {got}\n want {want}");
}

/// From the 2026-04-07 compatibility date Workers answer a close themselves, and from
/// 2026-03-17 `binaryType` starts as "blob": the same fixture on a later date, checked
/// against `wrangler dev` on that date, and a client's close answered with its own code.
#[tokio::test]
async fn later_compatibility_dates_answer_closes_and_default_to_blobs() {
    let dir = fixture_copy("ws-2026", |toml| toml.replace("2025-01-01", "2026-05-03"));
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/api"), None).await;
    let want = &expected("websockets")["routes_2026_05_03"]["/api"];
    assert_eq!(&got, want, "\n got  {got}\n want {want}");
    let mut ws = connect(&edge, "/echo").await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4321),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(close_of(recv(&mut ws).await), (4321, "bye".to_string()));
    edge.wait_for_event(
        "closed code=4321 reason=bye clean=true",
        Duration::from_secs(10),
    );
}

#[tokio::test]
async fn a_websocket_answer_needs_a_request_that_asked_for_one() {
    let edge = json_edge();
    let res = client().get(edge.url("/not-asked")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["edge-error"], "script-error");
    edge.wait_for_event("did not ask for one", Duration::from_secs(10));
    // The app itself answers a plain request to its WebSocket route.
    let res = client().get(edge.url("/echo")).send().await.unwrap();
    assert_eq!(res.status(), 426);
}

#[tokio::test]
async fn cpu_is_charged_per_message_and_a_runaway_listener_is_stopped() {
    let edge = json_edge();
    let mut ws = connect(&edge, "/echo").await;
    // Eight messages of 25 ms CPU each: 200 ms over the connection's life, within the 50 ms
    // limit per message.
    for _ in 0..8 {
        ws.send(Message::text("burn:25")).await.unwrap();
        assert_eq!(recv_text(&mut ws).await, "burnt 25");
    }
    // A listener that never returns is stopped at the limit: its isolate goes, and with it
    // the socket.
    ws.send(Message::text("spin")).await.unwrap();
    let end = recv(&mut ws).await;
    assert!(
        matches!(end, None | Some(Message::Close(_))),
        "the socket should end, got {end:?}"
    );
    edge.wait_for_event("isolate terminated", Duration::from_secs(10));
    still_serves(&edge, "1").await;
    echoes(&mut connect(&edge, "/echo").await, "again").await;
}

#[tokio::test]
async fn an_app_past_its_websocket_limit_is_answered_503() {
    let dir = fixture_copy("ws-limit", |toml| {
        format!("{toml}\n[limits]\nwebsockets = 2\n")
    });
    let edge = Edge::dev_dir(&dir, &[]);
    let mut first = connect(&edge, "/echo").await;
    let _second = connect(&edge, "/echo").await;
    match tokio_tungstenite::connect_async(ws_url(&edge, "/echo")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            assert_eq!(res.headers()["edge-error"], "overloaded");
        }
        other => panic!(
            "a third socket should be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    // One closes: there is room again.
    first.close(None).await.unwrap();
    let _ = recv(&mut first).await;
    let mut third = None;
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(ws_url(&edge, "/echo")).await {
            third = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    echoes(&mut third.expect("room for a socket once one closed"), "z").await;
}

#[tokio::test]
async fn sockets_close_with_1001_when_their_app_is_replaced() {
    let dir = fixture_copy("ws-reload", |toml| toml);
    let edge = Edge::dev_dir(&dir, &[]);
    let mut ws = connect(&edge, "/echo").await;
    echoes(&mut ws, "a").await;
    let script = std::fs::read_to_string(dir.join("index.js")).unwrap();
    std::fs::write(
        dir.join("index.js"),
        script.replace("\"ok \" + (env.VERSION ?? \"1\")", "\"ok 2\""),
    )
    .unwrap();
    assert_eq!(
        close_of(recv(&mut ws).await),
        (1001, "the app is restarting".to_string())
    );
    still_serves(&edge, "2").await;
    echoes(&mut connect(&edge, "/echo").await, "b").await;
}

/// A frame announcing more than 32 MiB is refused on its header, with a close frame 1009,
/// before any of it is sent (a raw client: the header is all it writes).
#[tokio::test]
async fn a_message_past_32_mib_is_refused_with_1009() {
    let edge = json_edge();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    // A masked binary frame of 33 MiB: the header only.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(33u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&frame).await.unwrap();
    let mut close = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut close))
        .await
        .expect("a close frame within 10 s")
        .unwrap();
    assert_eq!(close[0], 0x88, "a close frame: {close:?}");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1009);
    edge.wait_for_event("clean=false", Duration::from_secs(10));
}

#[tokio::test]
async fn a_peer_that_does_not_read_bounds_the_send_queue() {
    let edge = json_edge();
    let mut ws = connect(&edge, "/echo").await;
    ws.send(Message::text("flood")).await.unwrap();
    let event = edge.wait_for_event("flood stopped", Duration::from_secs(20));
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains("already waiting for the peer"),
        "{message}"
    );
    // The node serves on, and the socket still delivers what was queued.
    still_serves(&edge, "1").await;
    match recv(&mut ws).await {
        Some(Message::Binary(b)) => assert_eq!(b.len(), 1 << 20),
        other => panic!("a queued message, got {other:?}"),
    }
}

/// A Worker that proxies its client's WebSocket to the `?to=` server through an outbound one
/// (`fetch` with `Upgrade: websocket`); `/refused` and `/denied` say what such a fetch gave.
const PROXY: &str = r#"
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const upstream = url.searchParams.get("to");
    if (url.pathname === "/refused") {
      const res = await fetch(upstream, { headers: { Upgrade: "websocket" } });
      return new Response(`status ${res.status} webSocket ${res.webSocket} body ${await res.text()}`);
    }
    if (url.pathname === "/denied") {
      try {
        await fetch(upstream, { headers: { Upgrade: "websocket" } });
        return new Response("reached");
      } catch (e) {
        return new Response(`${e.name}: ${e.message}`);
      }
    }
    const res = await fetch(upstream, { headers: { Upgrade: "websocket", "X-Test": "proxied" } });
    const ws = res.webSocket;
    if (!ws) return new Response("no socket: " + res.status, { status: 502 });
    ws.accept();
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (e) => ws.send(e.data));
    ws.addEventListener("message", (e) => server.send(e.data));
    ws.addEventListener("close", (e) => server.close(4000, "upstream closed " + e.code));
    server.addEventListener("close", () => ws.close(1000, "client left"));
    return new Response(null, { status: 101, webSocket: client });
  },
};
"#;

fn proxy_app(name: &str, allow_private: bool) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::write(
        dir.join("edge.toml"),
        format!(
            "name = \"{name}\"\nmain = \"index.js\"\ncompatibility_date = \"2025-01-01\"\n\n[outbound]\nallow_private = {allow_private}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), PROXY).unwrap();
    dir
}

/// An upstream WebSocket server on loopback that answers each text message with `up:` and
/// it, and reports the `X-Test` and `User-Agent` headers its client sent.
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its own error type"
)]
async fn upstream() -> (u16, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                        let get = |n: &str| {
                            req.headers()
                                .get(n)
                                .map(|v| v.to_str().unwrap_or("").to_string())
                                .unwrap_or_default()
                        };
                        let _ = tx.send((get("x-test"), get("user-agent")));
                        Ok(res)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m
                        && ws.send(Message::text(format!("up:{t}"))).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn an_outbound_websocket_through_fetch_reaches_its_server() {
    let (port, mut seen) = upstream().await;
    let edge = Edge::dev_dir(&proxy_app("ws-proxy", true), &[]);
    let mut ws = connect(&edge, &format!("/proxy?to=ws://127.0.0.1:{port}/")).await;
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "up:hi");
    ws.send(Message::text("again")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "up:again");
    let (x_test, user_agent) = seen.recv().await.unwrap();
    assert_eq!(x_test, "proxied");
    assert!(user_agent.starts_with("edge/"), "{user_agent}");
    // A server that answers without upgrading: its answer is the fetch's response.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _) = plain.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\n\r\nnope")
            .await;
    });
    let text = get_text(
        &client(),
        &edge.url(&format!("/refused?to=http://127.0.0.1:{plain_port}/")),
        None,
    )
    .await;
    assert_eq!(text, "status 403 webSocket null body nope");
}

#[tokio::test]
async fn an_outbound_websocket_cannot_reach_loopback_unless_granted() {
    let (port, _seen) = upstream().await;
    let edge = Edge::dev_dir(&proxy_app("ws-denied", false), &[]);
    let text = get_text(
        &client(),
        &edge.url(&format!("/denied?to=ws://127.0.0.1:{port}/")),
        None,
    )
    .await;
    assert_eq!(
        text,
        "TypeError: 127.0.0.1 is a private or loopback address, which this app may not reach"
    );
}
