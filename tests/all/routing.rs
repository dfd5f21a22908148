//! `edge serve`: many tenants routed by Host and path prefix, isolated from each other, and a
//! broken app that does not take the others down.

use serde_json::{Value, json};

use crate::harness::{Edge, client, fixture};

async fn get(edge: &Edge, host: &str, path: &str) -> reqwest::Response {
    client()
        .get(edge.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

/// `node-basic`'s `catchall` app routes a wildcard host, which the operator must grant.
const NODE_BASIC: &[&str] = &["--allow-wildcard-routes", "catchall"];

#[tokio::test]
async fn routes_by_host_and_longest_path_prefix() {
    let edge = Edge::serve(&fixture("node-basic"), NODE_BASIC);
    let a: Value = get(&edge, "alpha.test", "/x").await.json().await.unwrap();
    assert_eq!(a["app"], "alpha");
    let b: Value = get(&edge, "alpha.test:8080", "/api/v1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        b["app"], "beta",
        "the longer prefix wins, the port is ignored"
    );
    let b: Value = get(&edge, "BETA.test", "/").await.json().await.unwrap();
    assert_eq!(b["app"], "beta");
    let w = get(&edge, "x.wild.test", "/").await.text().await.unwrap();
    assert_eq!(w, "wild x.wild.test");
    let l: Value = get(&edge, "alpha.localhost", "/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(l["app"], "alpha", "every app answers at <name>.localhost");

    let res = get(&edge, "nobody.test", "/").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["edge-error"], "no-route");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "no-route");
}

#[tokio::test]
async fn tenants_cannot_see_each_others_globals() {
    let edge = Edge::serve(&fixture("node-basic"), NODE_BASIC);
    let a: Value = get(&edge, "alpha.test", "/").await.json().await.unwrap();
    assert_eq!(a["secret"], "alpha's secret");
    let b: Value = get(&edge, "beta.test", "/").await.json().await.unwrap();
    assert_eq!(b, json!({"app": "beta", "path": "/", "secret": null}));
}

#[tokio::test]
async fn a_syntax_error_is_503_load_error_while_others_keep_serving() {
    let edge = Edge::serve(&fixture("node-basic"), NODE_BASIC);
    let res = get(&edge, "broken.test", "/").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "load-error");
    // The log says what and where.
    let event = edge.wait_for_event("failed to load", std::time::Duration::from_secs(5));
    assert_eq!(event["tenant"], "broken");
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("SyntaxError"), "{message}");
    // The unclosed call spans lines 3 and 4: V8 points at the end of line 3, QuickJS at line 4.
    assert!(
        message.contains("broken/index.js:3:") || message.contains("broken/index.js:4:"),
        "file:line missing: {message}"
    );
    // Asked again, still 503; the other tenants serve throughout.
    for _ in 0..3 {
        assert_eq!(get(&edge, "broken.test", "/").await.status(), 503);
        let a: Value = get(&edge, "alpha.test", "/").await.json().await.unwrap();
        assert_eq!(a["app"], "alpha");
    }
}

#[tokio::test]
async fn an_app_with_a_bad_config_is_skipped_with_a_clear_error() {
    let edge = Edge::serve(&fixture("node-basic"), NODE_BASIC);
    let event = edge.wait_for_event("unknown_key", std::time::Duration::from_secs(5));
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("bad-config/edge.toml"), "{message}");
    assert!(message.contains("line 4"), "{message}");
    let res = get(&edge, "bad.test", "/").await;
    assert_eq!(res.status(), 404);
    let a: Value = get(&edge, "alpha.test", "/").await.json().await.unwrap();
    assert_eq!(a["app"], "alpha");
}
