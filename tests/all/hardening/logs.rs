//! A script's console output is bounded: it cannot fill the node's disk.

use std::time::Duration;

use crate::harness::{Edge, client, fixture, get_text};

#[tokio::test]
async fn console_floods_are_cut_to_the_budget() {
    let edge = Edge::serve(&fixture("hardening"), &[]);
    let before = edge.logs().len();
    let body = get_text(&client(), &edge.url("/"), Some("chatty.test")).await;
    assert_eq!(body, "logged");
    edge.wait_for_event(
        "console output past 64 KiB/s: dropping lines",
        Duration::from_secs(5),
    );
    let written = edge.logs().len() - before;
    // 6 MiB asked for; the budget is a 256 KiB burst (plus the rate while it ran, and the
    // JSON around each line). Before, all of it was written.
    assert!(written < 2 << 20, "{written} bytes of log for one request");
    let long = edge
        .events()
        .into_iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.starts_with("yyyy")))
        .expect("the long line");
    assert!(
        long["message"]
            .as_str()
            .unwrap()
            .ends_with("more bytes cut)"),
        "the 1 MiB line was not cut"
    );
}
