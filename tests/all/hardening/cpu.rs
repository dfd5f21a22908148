//! All the CPU a tenant causes is charged to it and bounded, including work it leaves running
//! after its response.

use std::time::Duration;

use crate::harness::{Edge, client, cpu_time, fixture, get_text};

#[tokio::test]
async fn timers_left_running_after_the_response_are_stopped() {
    let edge = Edge::serve(&fixture("hardening"), &[]);
    let c = client();
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("after-response.test")).await,
        "answered"
    );
    // The interval spins 20 ms of every 25 with nothing in flight; before, it ran until the
    // isolate's idle timeout (300 s). Now it is stopped once it has used one invocation's
    // CPU limit (50 ms).
    let event = edge.wait_for_event("by work with no request in flight", Duration::from_secs(10));
    assert_eq!(event["tenant"], "after-response", "{event}");
    let before = cpu_time(edge.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(edge.pid()) - before;
    assert!(
        used < Duration::from_millis(800),
        "the node used {used:?} of CPU in 2 s after the isolate was stopped"
    );
    // The app still answers (from a new isolate).
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("after-response.test")).await,
        "answered"
    );
}

#[tokio::test]
async fn atomics_wait_cannot_block_the_isolate() {
    let edge = Edge::serve(&fixture("hardening"), &[]);
    let started = std::time::Instant::now();
    let body = get_text(&client(), &edge.url("/"), Some("atomics.test")).await;
    assert_eq!(
        body,
        "TypeError: Atomics.wait cannot be called in this context"
    );
    // Before, the wait held the isolate (and every request on it) for 10 s past `wall_ms`.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn web_crypto_work_off_the_isolate_thread_is_charged() {
    let edge = Edge::serve(&fixture("hardening"), &[]);
    let c = client();
    // A cheap derivation fits the 50 ms limit.
    assert_eq!(
        get_text(&c, &edge.url("/?iterations=1000"), Some("derive.test")).await,
        "derived 1 x 32 bytes"
    );
    // Past Workers' cap, refused before any work.
    assert_eq!(
        get_text(&c, &edge.url("/?iterations=4000000"), Some("derive.test")).await,
        "NotSupportedError: Pbkdf2 failed: iteration counts above 100000 are not supported (requested 4000000)"
    );
    // Thirty derivations of 100,000 iterations take about half a second of CPU on the
    // isolate's blocking pool. Before, none of it was charged (and 4 million iterations ran
    // to the end, answering 200).
    let started = std::time::Instant::now();
    let res = c
        .get(edge.url("/?times=30"))
        .header("host", "derive.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "cpu-limit");
    assert!(started.elapsed() < Duration::from_millis(50 + 1500));
}
