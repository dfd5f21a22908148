//! `HTMLRewriter`, checked against what Workers answers: `tests/fixtures/html-rewriter/expect.json`
//! holds each route's answer from `wrangler dev` (workerd) on the same fixture.

use crate::harness::{Edge, client, fixture};

#[tokio::test]
async fn html_rewriter_answers_as_workers_does() {
    let expect: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("html-rewriter").join("expect.json")).unwrap(),
    )
    .unwrap();
    let edge = Edge::dev("html-rewriter");
    let c = client();
    let mut failures = Vec::new();
    for (route, want) in expect["routes"].as_object().unwrap() {
        let res = c.get(edge.url(route)).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let got = match want {
            serde_json::Value::String(_) => serde_json::Value::String(text),
            _ => serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        };
        if !status.is_success() || &got != want {
            failures.push(format!("{route}: {status}\n  want {want}\n  got  {got}"));
        }
    }
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
