//! kill -9 during a write storm: every acknowledged write survives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{SHARE, cli_list};
use crate::harness::{Edge, client, copy_dir, fixture, scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let apps = scratch("kv-crash-apps");
    copy_dir(&fixture("kv-apps"), &apps);
    let data = scratch("kv-crash-data");
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const CYCLES: usize = 10;
    for cycle in 0..CYCLES {
        let mut edge = Edge::serve_in(&apps, &data, SHARE, &[]);
        let c = client();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        // Eight writers over two apps (two isolates) sharing the namespace.
        for w in 0..8 {
            let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
            let host = if w % 2 == 0 {
                "a.localhost"
            } else {
                "b.localhost"
            };
            let url = edge.url("/");
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("c{cycle:02}-w{w}-{i:06}");
                    let value = format!("value of {key}");
                    let res = c
                        .put(format!("{url}?key={key}"))
                        .header("host", host)
                        .body(value.clone())
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().unwrap().insert(key, value);
                        }
                        _ => break, // killed mid-request: not acknowledged
                    }
                    i += 1;
                }
            }));
        }
        // Kill at a random point 150–900 ms into the storm, once it has begun (the first write
        // acknowledged: on a loaded machine the node may take a while to get there).
        let prefix = format!("c{cycle:02}-");
        let began = std::time::Instant::now();
        while !acked.lock().unwrap().keys().any(|k| k.starts_with(&prefix)) {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "cycle {cycle}: no write acknowledged in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 + next() % 750)).await;
        edge.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        let listed: BTreeSet<String> = cli_list(&data, "shared").into_iter().collect();
        let acked_now = acked.lock().unwrap().clone();
        let lost: Vec<&String> = acked_now.keys().filter(|k| !listed.contains(*k)).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: {} acknowledged writes lost after kill -9, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let this_cycle = acked_now
            .keys()
            .filter(|k| k.starts_with(&format!("c{cycle:02}-")))
            .count();
        assert!(
            this_cycle > 0,
            "cycle {cycle}: no write was acknowledged before the kill"
        );
    }

    // Values, not just keys: read every acknowledged key back through a restarted node.
    let edge = Edge::serve_in(&apps, &data, SHARE, &[]);
    let c = client();
    let acked = acked.lock().unwrap().clone();
    let entries: Vec<(String, String)> = acked.into_iter().collect();
    for chunk in entries.chunks(16) {
        let reads = chunk.iter().map(|(key, value)| {
            let c = c.clone();
            let url = edge.url(&format!("/?key={key}"));
            async move {
                let got: Value = c
                    .get(url)
                    .header("host", "b.localhost")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(got["value"], value.as_str(), "{key}");
            }
        });
        futures::future::join_all(reads).await;
    }
    eprintln!(
        "kill -9 test: {CYCLES} cycles, {} acknowledged writes all present",
        entries.len()
    );
}
