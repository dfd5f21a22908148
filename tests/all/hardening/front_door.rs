//! What a client sends cannot make the front door route one way and tell the script another.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::Edge;

/// Sends `head` (a whole request head, `connection: close`) and returns the response.
async fn send(edge: &Edge, head: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get(host_lines: &str) -> String {
    format!("GET /path?q=1 HTTP/1.1\r\n{host_lines}connection: close\r\n\r\n")
}

#[tokio::test]
async fn the_script_sees_the_authority_routing_used_and_nothing_else() {
    let edge = Edge::serve(&crate::harness::fixture("hardening"), &[]);
    let res = send(&edge, &get("host: url.test:8080\r\n")).await;
    assert!(
        res.ends_with("\r\n\r\nhttp://url.test:8080/path?q=1"),
        "{res}"
    );
    // Before, each of these reached url.test while its script saw another host or path.
    for hosts in [
        "host: url.test:1@evil.example\r\n",
        "host: url.test:80/other?\r\n",
        "host: url.test\r\nhost: evil.example\r\n",
        "host: url.test#frag\r\n",
    ] {
        let res = send(&edge, &get(hosts)).await;
        assert!(
            res.starts_with("HTTP/1.1 400") && res.contains("bad-request"),
            "{hosts:?}: {res}"
        );
    }
    // An absolute-form target must agree with the Host header.
    let res = send(
        &edge,
        "GET http://evil.example/ HTTP/1.1\r\nhost: url.test\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 400"), "{res}");
}

/// Reads from `s` until the peer closes (or `within` passes): whether it closed in time.
async fn closed_within(s: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed() {
    use std::time::{Duration, Instant};
    let edge = Edge::serve(
        &crate::harness::fixture("hardening"),
        &["--header-timeout-secs", "1", "--keep-alive-secs", "2"],
    );
    // A head trickled a byte at a time never completes: closed after the header timeout.
    // (Before, a new connection had 60 s and later ones no limit at all.)
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        s.write_all(b"GET / HTTP/1.1\r\nhost: good.test\r\n")
            .await
            .unwrap();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b"x").await.is_err() {
                return;
            }
        }
    };
    trickle.await;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap_or(0);
    assert_eq!(n, 0, "the slow connection was answered instead of closed");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A keep-alive connection that goes quiet after a request is closed too.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: good.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("fine"));
    assert!(
        closed_within(&mut s, Duration::from_secs(6)).await,
        "an idle keep-alive connection stayed open"
    );
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let edge = Edge::serve(
        &crate::harness::fixture("hardening"),
        &["--max-connections-per-ip", "20"],
    );
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(
            tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
                .await
                .unwrap(),
        );
    }
    // Give the node time to accept the twenty.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        extra.read_to_end(&mut out),
    )
    .await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 503"), "{out:?}");
    // Once they go, the client is served again.
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let res = send(&edge, &get("host: url.test\r\n")).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}
