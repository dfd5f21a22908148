//! A response the front door cannot send is `500 script-error`, never a dead node.

use crate::harness::{Edge, client, fixture, get_text};

#[tokio::test]
async fn a_response_with_too_many_headers_is_refused_and_the_node_stays_up() {
    let mut edge = Edge::serve(&fixture("hardening"), &[]);
    let c = client();
    // 40,000 headers straight into the list (past hyper's 32,768, which aborted the node);
    // 5,000 through `Headers.append`, whose checks make it slow on the quickjs engine.
    for path in ["/list?n=40000", "/append?n=5000", "/big"] {
        let res = c
            .get(edge.url(path))
            .header("host", "headers.test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}; log:\n{}", edge.logs()));
        assert_eq!(res.status(), 500, "{path}");
        assert_eq!(res.headers()["edge-error"], "script-error", "{path}");
        assert!(edge.is_alive(), "{path} took the node down");
        assert_eq!(
            get_text(&c, &edge.url("/"), Some("good.test")).await,
            "fine"
        );
    }
    edge.wait_for_event(
        "the app's response cannot be sent: the response has more than 4096 headers",
        std::time::Duration::from_secs(2),
    );
    // Within the caps, a response keeps all its headers (90: reqwest reads at most 100).
    let res = c
        .get(edge.url("/append?n=90"))
        .header("host", "headers.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .keys()
            .filter(|k| k.as_str().starts_with("x-h"))
            .count(),
        90
    );
}
