//! The Cache API (`caches.default`, `caches.open`), checked against what Workers answers:
//! `tests/fixtures/cache-api/expect.json` holds each route's answer from `wrangler dev`
//! (workerd with miniflare's cache) on the same fixture. Then what only a node shows: each
//! app's entries are its own, they outlive the process (kill -9), and an app past its bound
//! evicts its own least recently used entries.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Edge, client, fixture, scratch};

#[tokio::test]
async fn the_cache_api_answers_as_workers_does() {
    let expect: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("cache-api").join("expect.json")).unwrap(),
    )
    .unwrap();
    let edge = Edge::dev("cache-api");
    let c = client();
    let mut failures = Vec::new();
    for (route, want) in expect["routes"].as_object().unwrap() {
        let res = c.get(edge.url(route)).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let got = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        if !status.is_success() || &got != want {
            failures.push(format!("{route}: {status}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Where edge differs from `wrangler dev`, on purpose.
    let got: serde_json::Value = c
        .get(edge.url("/differences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrangler = &expect["differences"];
    // A response without caching headers gets Cloudflare's default edge TTL for its status
    // (2 h for a 200), as on Workers in production; `wrangler dev` keeps it for no time.
    assert_eq!(wrangler["noHeaders"], "undefined");
    assert_eq!(got["noHeaders"], "no caching headers");
    // A 204 with max-age is stored and answered (miniflare fails to store an empty-bodied 204).
    assert_eq!(wrangler["noContent"], "undefined");
    assert_eq!(got["noContent"], 204);
    // The whole body is stored, so its length is known and sent, streamed or not.
    assert_eq!(wrangler["streamLength"], "undefined");
    assert_eq!(got["streamLength"], "8");
    // `private=Set-Cookie` is removed from what is stored as a directive, not as a substring
    // (miniflare leaves a stray comma).
    assert_eq!(wrangler["privateSetCookie"], ", max-age=60");
    assert_eq!(got["privateSetCookie"], "max-age=60");
}

/// Two apps whose scripts use the same cache keys; each answers with what it finds.
fn two_apps(apps: &Path) {
    for name in ["a", "b"] {
        let dir = apps.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("edge.toml"),
            format!("name = \"{name}\"\nmain = \"index.js\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("index.js"),
            format!(
                r#"export default {{
  async fetch(request) {{
    const url = new URL(request.url);
    const key = "https://shared.test" + url.pathname;
    const size = Number(url.searchParams.get("size") ?? 0);
    if (url.searchParams.get("op") === "put") {{
      const ttl = url.searchParams.get("ttl") ?? "3600";
      const body = size ? "x".repeat(size) : "from {name}";
      await caches.default.put(key, new Response(body, {{ headers: {{ "cache-control": "max-age=" + ttl }} }}));
      return new Response("put");
    }}
    const hit = await caches.default.match(key);
    if (!hit) return new Response("miss");
    const text = await hit.text();
    return new Response(size ? String(text.length) : text);
  }},
}};
"#
            ),
        )
        .unwrap();
    }
}

async fn ask(edge: &Edge, app: &str, path: &str) -> String {
    let res = client()
        .get(edge.url(path))
        .header("host", format!("{app}.localhost"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{app}{path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn each_apps_cache_is_its_own_and_outlives_a_kill_9() {
    let apps = scratch("cache-apps");
    let data = scratch("cache-data");
    two_apps(&apps);
    let mut edge = Edge::serve_in(&apps, &data, &[], &[]);
    assert_eq!(ask(&edge, "a", "/k?op=put").await, "put");
    assert_eq!(ask(&edge, "a", "/k").await, "from a");
    // The same key in another app is another entry.
    assert_eq!(ask(&edge, "b", "/k").await, "miss");
    assert_eq!(ask(&edge, "b", "/k?op=put").await, "put");
    assert_eq!(ask(&edge, "b", "/k").await, "from b");
    assert_eq!(ask(&edge, "a", "/k").await, "from a");
    assert_eq!(ask(&edge, "a", "/short?op=put&ttl=1").await, "put");
    assert_eq!(ask(&edge, "a", "/short").await, "from a");

    // The writer syncs the file within a second of a write; give it well over that.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    edge.kill9();
    let edge = Edge::serve_in(&apps, &data, &[], &[]);
    assert_eq!(ask(&edge, "a", "/k").await, "from a");
    assert_eq!(ask(&edge, "b", "/k").await, "from b");
    // Past its max-age: gone, before and after the restart alike.
    assert_eq!(ask(&edge, "a", "/short").await, "miss");
}

#[tokio::test]
async fn an_app_past_its_cache_bound_evicts_only_its_own_oldest_entries() {
    let apps = scratch("cache-bound-apps");
    two_apps(&apps);
    let edge = Edge::serve(&apps, &["--cache-app-mb", "1"]);
    assert_eq!(ask(&edge, "b", "/small?op=put").await, "put");
    for path in ["/1", "/2"] {
        assert_eq!(
            ask(&edge, "a", &format!("{path}?op=put&size=400000")).await,
            "put"
        );
    }
    // Used, so /2 is now a's least recently used.
    assert_eq!(ask(&edge, "a", "/1?size=1").await, "400000");
    assert_eq!(ask(&edge, "a", "/3?op=put&size=400000").await, "put");
    assert_eq!(ask(&edge, "a", "/2?size=1").await, "miss");
    assert_eq!(ask(&edge, "a", "/1?size=1").await, "400000");
    assert_eq!(ask(&edge, "a", "/3?size=1").await, "400000");
    // Another app's entry is not a's to evict.
    assert_eq!(ask(&edge, "b", "/small").await, "from b");
    // An entry larger than the app's whole bound is not stored, and evicts nothing.
    assert_eq!(ask(&edge, "a", "/big?op=put&size=1200000").await, "put");
    assert_eq!(ask(&edge, "a", "/big?size=1").await, "miss");
    assert_eq!(ask(&edge, "a", "/3?size=1").await, "400000");
}
