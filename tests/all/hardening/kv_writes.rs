//! KV writes a tenant causes are bounded: bytes awaiting commit per app (they live outside the
//! isolate's heap), and bytes stored per namespace (the node's quota).

use crate::harness::{Edge, client, fixture, get_text, scratch};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Before: 40 unawaited 25 MiB puts were all queued (about 1 GB held outside a 64 MiB heap
/// limit). Now at most one memory limit of values waits for commit; the rest fail at once.
#[tokio::test]
async fn unawaited_puts_are_bounded_by_the_memory_limit() {
    let edge = Edge::serve_in(&fixture("hardening"), &scratch("data"), &[], &[]);
    let c = client();
    let out = json(&get_text(&c, &edge.url("/backlog"), Some("kv-hog.test")).await);
    eprintln!("{out}");
    // 64 MiB holds two 25 MiB values; the third would not fit.
    assert_eq!(out["stored"], 2, "{out}");
    assert_eq!(out["refused"], 38, "{out}");
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains("429 too many writes awaiting commit"),
        "{message}"
    );
    // Once they are durable the app may write again.
    let again = json(&get_text(&c, &edge.url("/backlog"), Some("kv-hog.test")).await);
    assert_eq!(again["stored"], 2, "{again}");
}

/// Before: no namespace had a storage quota. Now a put that would take a namespace past the
/// node's `--kv-quota-mb` fails with 413 (naming the quota), and deleting makes room again.
#[tokio::test]
async fn a_namespace_cannot_store_past_the_node_quota() {
    let edge = Edge::serve_in(
        &fixture("hardening"),
        &scratch("data"),
        &["--kv-quota-mb", "2"],
        &[],
    );
    let c = client();
    let out = json(&get_text(&c, &edge.url("/quota"), Some("kv-hog.test")).await);
    eprintln!("{out}");
    // 2 MiB holds three 600 KiB values (and their keys), not four.
    assert_eq!(out["stored"], 3, "{out}");
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains("413 namespace storage quota of 2097152 bytes exceeded"),
        "{message}"
    );
    assert_eq!(
        get_text(&c, &edge.url("/free"), Some("kv-hog.test")).await,
        "freed"
    );
}
