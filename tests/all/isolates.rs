//! The engine defect this design works around: the quickjs backend's per-thread dispatch table
//! overflows after ~50 runtimes on one thread, and calls then go to the wrong function. Every
//! isolate has its own thread, so creating and dropping hundreds must keep every result right.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::harness::{Edge, client, copy_dir, fixture, get_json, scratch};

fn expected(isolate: &Value) -> Value {
    json!({
        "isolate": isolate,
        "bytes": 6,
        "text": "héllo",
        "url": "https://example.com/b?x=1",
        "digest": [60, 72, 89, 29],
        "clone": 3,
    })
}

#[tokio::test]
async fn hundreds_of_isolates_created_and_dropped_in_sequence_stay_correct() {
    // Idle timeout 0: each isolate retires as soon as it has nothing in flight, so almost every
    // request below starts a fresh isolate.
    let dir = fixture("churn");
    let edge = Edge::start_with_env(
        &[
            "dev",
            dir.to_str().unwrap(),
            "--port",
            "0",
            "--idle-timeout",
            "0",
            "--log-format",
            "json",
        ],
        &[("EDGE_LOG", "info,edge_runtime::isolate::js_worker=debug")],
    );
    let c = client();
    let mut isolates = HashSet::new();
    for i in 0..300 {
        let got: Value = get_json(&c, &edge.url("/"), None).await;
        assert_eq!(got, expected(&got["isolate"]));
        isolates.insert(got["isolate"].as_str().unwrap().to_string());
        // Wait until that isolate has retired, so the next request starts a new one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while edge
            .events()
            .iter()
            .filter(|e| e["message"] == "idle isolate retired")
            .count()
            <= i
        {
            assert!(
                std::time::Instant::now() < deadline,
                "isolate {i} did not retire"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    assert_eq!(isolates.len(), 300, "every request ran in a fresh isolate");
}

#[tokio::test]
async fn hundreds_of_isolates_live_at_once_stay_correct() {
    let apps = scratch("churn-apps");
    const APPS: usize = 200;
    for i in 0..APPS {
        let dir = apps.join(format!("app{i}"));
        copy_dir(&fixture("churn"), &dir);
        std::fs::write(
            dir.join("edge.toml"),
            format!("name = \"app{i}\"\nmain = \"index.js\"\n"),
        )
        .unwrap();
    }
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    let requests = (0..APPS).map(|i| {
        let c = c.clone();
        let url = edge.url("/");
        async move {
            let got: Value = get_json(&c, &url, Some(format!("app{i}.localhost").as_str())).await;
            got
        }
    });
    let results = futures::future::join_all(requests).await;
    let mut isolates = HashSet::new();
    for got in &results {
        assert_eq!(got, &expected(&got["isolate"]));
        isolates.insert(got["isolate"].as_str().unwrap().to_string());
    }
    assert_eq!(isolates.len(), APPS, "each app runs in its own isolate");
    // All still live: a second round hits the same isolates, still correct.
    for i in (0..APPS).step_by(17) {
        let got: Value = get_json(
            &c,
            &edge.url("/"),
            Some(format!("app{i}.localhost").as_str()),
        )
        .await;
        assert_eq!(got, expected(&got["isolate"]));
        assert!(isolates.contains(got["isolate"].as_str().unwrap()));
    }
}
