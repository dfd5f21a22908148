//! Script failures become runtime errors with an `edge-error` header; nothing takes the node
//! down.

use crate::harness::{Edge, client};

#[tokio::test]
async fn thrown_errors_are_500_script_error_without_details() {
    let edge = Edge::dev("throws");
    let c = client();
    for path in ["/sync", "/async", "/not-response"] {
        let res = c.get(edge.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 500, "{path}");
        assert_eq!(res.headers()["edge-error"], "script-error", "{path}");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("secret detail"),
            "{path}: the stack leaked: {body}"
        );
        assert!(
            !body.contains("index.js"),
            "{path}: the stack leaked: {body}"
        );
    }
    // The full stack, with tenant and request id, is in the log.
    let event = edge.wait_for_event(
        "secret detail that must not reach the client",
        std::time::Duration::from_secs(5),
    );
    assert_eq!(event["tenant"], "throws", "{event}");
    assert!(
        event["request_id"].as_str().is_some_and(|r| r.len() == 16),
        "{event}"
    );
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("index.js:4:"), "stack missing: {message}");
    // And the isolate still serves.
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn unhandled_rejections_are_logged_and_the_isolate_keeps_serving() {
    let edge = Edge::dev("throws");
    let c = client();
    let res = c.get(edge.url("/unhandled")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "still fine");
    let event = edge.wait_for_event("nobody listens", std::time::Duration::from_secs(5));
    assert_eq!(event["tenant"], "throws");
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
}

/// A timer callback or microtask that throws is logged; the isolate (and the requests on it)
/// carry on, as on Workers.
#[tokio::test]
async fn exceptions_in_timers_and_microtasks_are_logged_and_the_isolate_keeps_serving() {
    let edge = Edge::dev("throws");
    let c = client();
    let res = c.get(edge.url("/timer")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "answered");
    for needle in ["a timer threw", "a microtask threw"] {
        let event = edge.wait_for_event(needle, std::time::Duration::from_secs(5));
        assert_eq!(event["tenant"], "throws");
    }
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    assert!(
        !edge.logs().contains("isolate stopped"),
        "the isolate should have kept serving:\n{}",
        edge.logs()
    );
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_node_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut edge = Edge::dev("hello");
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    s.write_all(b"GARBAGE\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let res = client().get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(edge.is_alive());
}
