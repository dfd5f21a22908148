//! A client that never reads its response costs only its own request.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::harness::{Edge, client, fixture};

#[tokio::test]
async fn a_slow_reader_costs_only_its_own_request() {
    let edge = Edge::serve(&fixture("hardening"), &[]);
    // Warm the app so both requests land on one isolate.
    let c = client();
    let slow = async || {
        c.get(edge.url("/slow"))
            .header("host", "slow-reader.test")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(slow().await.text().await.unwrap(), "done");

    // A asks for the endless stream and never reads a byte of it.
    let mut a = tokio::net::TcpStream::connect(("127.0.0.1", edge.port))
        .await
        .unwrap();
    a.write_all(b"GET /stream HTTP/1.1\r\nhost: slow-reader.test\r\n\r\n")
        .await
        .unwrap();
    // A second later, B asks for something that takes 1.5 s: still running when A passes its
    // 2 s wall-clock limit. Before, A's limit discarded the isolate and B failed with it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let res = slow().await;
    assert_eq!(res.status(), 200, "{:?}", res.headers().get("edge-error"));
    assert_eq!(res.text().await.unwrap(), "done");
    let event = edge.wait_for_event(
        "invocation stopped: wall-clock limit of 2000 ms exceeded",
        Duration::from_secs(5),
    );
    assert_eq!(event["tenant"], "slow-reader", "{event}");
    assert!(
        !edge.logs().contains("isolate terminated"),
        "the isolate was discarded:\n{}",
        edge.logs()
    );
    drop(a);
}
