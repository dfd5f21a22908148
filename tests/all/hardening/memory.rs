//! Memory comes back when an isolate goes: retired or stopped for a limit.
//!
//! V8 only: on the quickjs engine a retired isolate's heap is not freed (each retirement here
//! keeps about 64 MiB; one stopped for a limit is freed), a defect of the engine facade that
//! the README's Limits section states.

use std::time::Duration;

use crate::harness::{Edge, client, fixture, rss_kib, scratch};

#[tokio::test]
async fn memory_comes_back_after_isolates_retire_or_breach() {
    // Every isolate retires after a second idle, and none are kept warm: each cycle below
    // makes and drops one isolate holding about 60 MiB.
    let edge = Edge::serve_in(
        &fixture("hardening"),
        &scratch("data"),
        &["--idle-timeout", "1", "--warm-isolates", "0"],
        &[],
    );
    let c = client();
    let get = async |host: &str| {
        c.get(edge.url("/"))
            .header("host", host)
            .send()
            .await
            .unwrap()
    };
    // Baseline after one cycle of each, so that what is made once per process (the engine's
    // code, the snapshot, allocator arenas) is in it.
    assert_eq!(get("hold.test").await.status(), 200);
    assert_eq!(
        get("hold-breach.test").await.headers()["edge-error"],
        "cpu-limit"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let baseline = rss_kib(edge.pid());
    for _ in 0..10 {
        let res = get("hold-breach.test").await;
        assert_eq!(res.headers()["edge-error"], "cpu-limit");
    }
    for _ in 0..10 {
        let res = get("hold.test").await;
        assert_eq!(res.text().await.unwrap(), "holding 60 MiB");
        // Idle for a second: the isolate retires.
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    let after = rss_kib(edge.pid());
    // Before, each cycle kept 100-125 MB: 20 cycles took RSS past 2 GB.
    let one_isolate_limit = 128 * 1024;
    eprintln!("RSS {baseline} KiB at baseline, {after} KiB after 20 cycles");
    assert!(
        after < baseline + 2 * one_isolate_limit,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
}
