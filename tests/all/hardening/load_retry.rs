//! An app that fails to load is loaded again later, with backoff: a failure (a broken file,
//! a transient lack of file descriptors) is not remembered as the app's state until the node
//! restarts, and a broken app is not reloaded in a loop either.

use std::time::{Duration, Instant};

use crate::harness::{Edge, client, get_text, scratch};

fn failures(edge: &Edge) -> Vec<serde_json::Value> {
    edge.events()
        .into_iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("app failed to load"))
        })
        .collect()
}

/// The failures logged, once there are at least `n` (the log line may land just after the
/// response that reports the failure).
fn wait_failures(edge: &Edge, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = failures(edge);
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_failed_app_is_loaded_again_with_backoff() {
    let apps = scratch("load-retry");
    let dir = apps.join("flaky");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"flaky\"\nmain = \"index.js\"\nroutes = [\"flaky.test/*\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), "export default { fetch( {\n").unwrap();
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    let status = |c: &reqwest::Client| {
        let (c, url) = (c.clone(), edge.url("/"));
        async move {
            let res = c
                .get(url)
                .header("host", "flaky.test")
                .send()
                .await
                .unwrap();
            let code = res.headers().get("edge-error").cloned();
            (
                res.status().as_u16(),
                code.map(|v| v.to_str().unwrap().to_string()),
            )
        }
    };
    assert_eq!(status(&c).await, (503, Some("load-error".into())));
    let failed_at = Instant::now();
    assert_eq!(wait_failures(&edge, 1)[0]["retry_in_secs"], 1);
    // Within the backoff the error is answered without loading again.
    assert_eq!(status(&c).await, (503, Some("load-error".into())));
    if failed_at.elapsed() < Duration::from_millis(900) {
        assert_eq!(failures(&edge).len(), 1, "{:?}", failures(&edge));
    }

    // Past it the app is loaded again: still broken, so the wait doubles.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&c).await, (503, Some("load-error".into())));
    let seen = wait_failures(&edge, 2);
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen[1]["retry_in_secs"], 2);

    // Fixed on disk (before, only a restart picked that up): the next load serves it.
    std::fs::write(
        dir.join("index.js"),
        "export default { fetch() { return new Response(\"fixed\"); } };\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("flaky.test")).await,
        "fixed"
    );
}
