//! Outbound `fetch` reaches public hosts only, unless the app allows private networks.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Edge, client};

/// A one-shot HTTP server on loopback that answers "from upstream" and reports the request.
async fn upstream() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        let body = "from upstream";
        let res = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(res.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (port, task)
}

async fn ask(edge: &Edge, target: &str) -> Value {
    ask_host(edge, target, None).await
}

/// Like [`ask`], with a Host header when `host` is given (a node routes by it).
async fn ask_host(edge: &Edge, target: &str, host: Option<&str>) -> Value {
    let mut req = client().get(edge.url("/")).query(&[("url", target)]);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn loopback_and_private_addresses_are_denied_by_default() {
    let edge = Edge::dev("outbound");
    for target in [
        "http://127.0.0.1:18081/",
        "http://localhost:18081/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:18081/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]:18081/",
    ] {
        let got = ask(&edge, target).await;
        assert_eq!(got["ok"], false, "{target}: {got}");
        let error = got["error"].as_str().unwrap();
        // The refusal names edge's own setting, never Deno's flag.
        assert!(!error.contains("--allow-net"), "{target}: {error}");
        assert!(
            error.contains("[outbound] allow_private = true") || error.contains("not allowed"),
            "{target}: {error}"
        );
    }
}

#[tokio::test]
async fn an_app_that_allows_private_networks_reaches_loopback() {
    let (port, request) = upstream().await;
    let edge = Edge::dev("outbound-private");
    let got = ask(&edge, &format!("http://127.0.0.1:{port}/hello")).await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 200);
    assert_eq!(got["body"], "from upstream");
    let seen = request.await.unwrap().to_ascii_lowercase();
    assert!(seen.starts_with("get /hello http/1.1"), "{seen}");
    assert!(seen.contains("x-from: edge"), "{seen}");
    assert!(seen.contains("user-agent: edge/"), "{seen}");
}

/// An app cannot grant itself private-network access on a node: the operator does, by name.
#[tokio::test]
async fn on_a_node_private_networks_need_the_operators_grant() {
    let apps = crate::harness::scratch("private-apps");
    crate::harness::copy_dir(
        &crate::harness::fixture("outbound-private"),
        &apps.join("outbound-private"),
    );
    let ask_node = async |edge: &Edge, port: u16| -> Value {
        let target = format!("http://127.0.0.1:{port}/hello");
        ask_host(edge, &target, Some("outbound-private.localhost")).await
    };
    // Its edge.toml asks for `allow_private`; before, that alone reached loopback (and the
    // node's admin listener).
    let (port, _request) = upstream().await;
    let edge = Edge::serve(&apps, &[]);
    let got = ask_node(&edge, port).await;
    assert_eq!(got["ok"], false, "{got}");
    edge.wait_for_event(
        "`outbound.allow_private` is not granted by the node",
        std::time::Duration::from_secs(2),
    );
    drop(edge);
    let edge = Edge::serve(&apps, &["--allow-private-network", "outbound-private"]);
    let got = ask_node(&edge, port).await;
    assert_eq!(got["ok"], true, "{got}");
}
