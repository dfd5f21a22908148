//! SIGTERM stops a node cleanly: no new connections, requests in flight finish (up to the grace
//! period), exit 0. Before, SIGTERM cut every request in flight.

use std::time::{Duration, Instant};

use crate::harness::{Edge, client, fixture, scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    // (The tenant's "app loaded" event tells that the slow request has reached the node.)
    let mut edge = Edge::serve_in(
        &fixture("hardening"),
        &scratch("data"),
        &[],
        &[("EDGE_LOG", "info,edge_runtime::isolate::js_worker=debug")],
    );
    let c = client();
    let url = edge.url("/slow");
    // Takes 1.5 s; SIGTERM comes while it waits.
    let slow = tokio::spawn({
        let c = c.clone();
        async move {
            let res = c
                .get(url)
                .header("host", "slow-reader.test")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let body = res.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        }
    });
    // In flight: its app loaded for it (on a loaded machine that may take a while).
    let loaded =
        tokio::task::block_in_place(|| edge.wait_for_event("app loaded", Duration::from_secs(60)));
    assert_eq!(loaded["tenant"], "slow-reader", "{loaded}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = edge.pid();
    let port = edge.port;
    let exited = tokio::task::spawn_blocking(move || {
        let status = edge.terminate();
        (status, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Stopping: no new connections.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a stopping node (pid {pid}) still accepted a connection"
    );
    let answered = slow.await.unwrap();
    let answered_at = Instant::now();
    assert_eq!(answered, Ok((200, "done".to_string())));
    let (status, exited_at) = exited.await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(exited_at + Duration::from_millis(50) >= answered_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_the_wait() {
    let mut edge = Edge::serve_in(
        &fixture("hardening"),
        &scratch("data"),
        &["--grace-secs", "1"],
        &[("EDGE_LOG", "info,edge_runtime::isolate::js_worker=debug")],
    );
    // An endless response, never read: in flight until the client goes away.
    let mut endless = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    endless
        .write_all(b"GET /stream HTTP/1.1\r\nhost: slow-reader.test\r\n\r\n")
        .await
        .unwrap();
    // In flight once its app has loaded for it.
    tokio::task::block_in_place(|| edge.wait_for_event("app loaded", Duration::from_secs(60)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let status = tokio::task::spawn_blocking(move || edge.terminate())
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "stopped after {took:?} with a grace period of 1 s"
    );
}
