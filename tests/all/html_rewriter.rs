//! `HTMLRewriter`, checked against what Workers answers: `tests/fixtures/html-rewriter/expect.json`
//! holds each route's answer from `wrangler dev` (workerd) on the same fixture.

use crate::harness::{Edge, client, differences_from, expected};

#[tokio::test]
async fn html_rewriter_answers_as_workers_does() {
    let edge = Edge::dev("html-rewriter");
    let failures = differences_from(&edge, &expected("html-rewriter")).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The rewritten body is streamed: the original's Content-Length (still visible to the script,
/// as on Workers) is not sent, and the body is chunked.
#[tokio::test]
async fn a_rewritten_body_is_sent_without_the_originals_length() {
    let edge = Edge::dev("html-rewriter");
    let res = client().get(edge.url("/wire")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "{:?}",
        res.headers()
    );
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    assert_eq!(res.text().await.unwrap(), "<p a=\"1\">x</p>");
}
