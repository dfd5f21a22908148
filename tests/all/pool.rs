//! The warm pool: isolates restored before any app needs them must take on their app's own
//! settings (vars, outbound policy, the node's heap limit) when they are assigned.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Edge, client, copy_dir, fixture, scratch};

/// A one-shot HTTP server on loopback that answers "from upstream".
async fn upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await;
            let body = "from upstream";
            let res = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(res.as_bytes()).await;
        }
    });
    port
}

#[tokio::test]
async fn pooled_isolates_take_their_apps_settings() {
    let apps = scratch("pool-apps");
    for name in ["vars", "outbound", "outbound-private"] {
        copy_dir(&fixture(name), &apps.join(name));
    }
    // The alloc app sets no memory limit of its own, so it runs in a pooled isolate made with
    // the node's default (64 MiB here) and must be stopped there.
    let alloc = apps.join("alloc");
    copy_dir(&fixture("hostile/alloc-buffers"), &alloc);
    std::fs::write(
        alloc.join("edge.toml"),
        "name = \"alloc\"\nmain = \"index.js\"\n\n[limits]\ncpu_ms = 5000\n",
    )
    .unwrap();

    let edge = Edge::serve_in(
        &apps,
        &scratch("pool-data"),
        &[
            "--warm-isolates",
            "4",
            "--memory-mb",
            "64",
            "--allow-private-network",
            "outbound-private",
        ],
        &[("EDGE_LOG", "info,edge_runtime::isolate::pool=debug")],
    );
    edge.wait_for_event("warm pool full", Duration::from_secs(60));
    let c = client();
    let port = upstream().await;
    let target = format!("http://127.0.0.1:{port}/");
    let ask = |host: &'static str| {
        let req = c
            .get(edge.url("/"))
            .query(&[("url", target.as_str())])
            .header("host", host);
        async move { req.send().await.unwrap() }
    };

    let vars: Value = ask("vars.localhost").await.json().await.unwrap();
    assert_eq!(vars["GREETING"], "hi", "{vars}");
    assert_eq!(vars["NESTED"]["a"][1], 2, "{vars}");

    let denied: Value = ask("outbound.localhost").await.json().await.unwrap();
    assert_eq!(
        denied["ok"], false,
        "default policy must deny loopback: {denied}"
    );

    let allowed: Value = ask("outbound-private.localhost")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        allowed["ok"], true,
        "allow_private must reach loopback: {allowed}"
    );
    assert_eq!(allowed["body"], "from upstream", "{allowed}");

    let res = ask("alloc.localhost").await;
    let code = res
        .headers()
        .get("edge-error")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(code.as_deref(), Some("memory-limit"), "{}", res.status());

    // Every one of them ran in a pooled isolate, not one made on demand.
    for app in ["vars", "outbound", "outbound-private", "alloc"] {
        assert!(
            edge.events().iter().any(|e| {
                e["message"] == "isolate taken from the warm pool" && e["tenant"] == app
            }),
            "{app} did not get a pooled isolate; log:\n{}",
            edge.logs()
        );
    }
    // The node still answers after the breach, from a fresh pooled isolate.
    let again: Value = ask("vars.localhost").await.json().await.unwrap();
    assert_eq!(again["GREETING"], "hi");
}
