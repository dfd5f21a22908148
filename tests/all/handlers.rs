//! Module and service-worker handlers, `env` vars, `ctx.waitUntil`.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Edge, client, get_json, get_text};

#[tokio::test]
async fn hello_answers_with_body_and_headers() {
    let edge = Edge::dev("hello");
    let res = client().get(edge.url("/some/path")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-handler"], "hello");
    assert!(res.headers().get("edge-error").is_none());
    assert_eq!(res.text().await.unwrap(), "hello from /some/path");
}

#[tokio::test]
async fn vars_are_on_env_with_their_types() {
    let edge = Edge::dev("vars");
    let body: serde_json::Value = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        body,
        json!({"GREETING": "hi", "COUNT": 3, "ENABLED": true, "NESTED": {"a": [1, 2], "b": "c"}})
    );
}

#[tokio::test]
async fn service_worker_syntax_works() {
    let edge = Edge::dev("service-worker");
    let res = client().post(edge.url("/sw")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-syntax"], "service-worker");
    assert_eq!(res.text().await.unwrap(), "sw POST /sw");
    // respondWith() given neither a Response nor a promise fails at once, as on Workers (the
    // default wall limit is 30 s), and the isolate serves on.
    let started = std::time::Instant::now();
    let res = client().get(edge.url("/thenable")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    edge.wait_for_event(
        "Incorrect type for Promise: the Promise did not resolve to 'Response'.",
        std::time::Duration::from_secs(10),
    );
    let res = client().get(edge.url("/after")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "sw GET /after");
}

#[tokio::test]
async fn wait_until_keeps_work_alive_after_the_response() {
    let edge = Edge::dev("wait-until");
    let c = client();
    let res = c.get(edge.url("/start")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "started");
    // The background work sleeps 1 s before recording its result.
    let before = get_text(&c, &edge.url("/result"), None).await;
    assert_eq!(before, "not yet");
    let mut after = String::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = get_text(&c, &edge.url("/result"), None).await;
        if after != "not yet" {
            break;
        }
    }
    assert_eq!(after, "background work finished");
}

#[tokio::test]
async fn many_concurrent_requests_share_one_isolate() {
    let edge = Edge::dev("hello");
    let c = client();
    let futures = (0..200).map(|i| {
        let c = c.clone();
        let url = edge.url(&format!("/n/{i}"));
        async move { get_text(&c, &url, None).await }
    });
    let bodies = futures::future::join_all(futures).await;
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body, &format!("hello from /n/{i}"));
    }
}
