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
