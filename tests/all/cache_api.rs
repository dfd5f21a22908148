//! The Cache API (`caches.default`, `caches.open`), checked against what Workers answers:
//! `tests/fixtures/cache-api/expect.json` holds each route's answer from `wrangler dev`
//! (workerd with miniflare's cache) on the same fixture. Then what only a node shows: each
//! app's entries are its own, they outlive the process (kill -9), and an app past its bound
//! evicts its own least recently used entries.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Edge, client, differences_from, expected, get_json, scratch};

#[tokio::test]
async fn the_cache_api_answers_as_workers_does() {
    let expect = expected("cache-api");
    let edge = Edge::dev("cache-api");
    let failures = differences_from(&edge, &expect).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Where edge differs from `wrangler dev`, on purpose.
    let got = get_json(&client(), &edge.url("/differences"), None).await;
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

/// A scratch app folder with this `edge.toml` and `index.js`.
fn scratch_app(name: &str, toml: &str, script: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("edge.toml"), toml).unwrap();
    std::fs::write(dir.join("index.js"), script).unwrap();
    dir
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

    // A resolved put is synced: killing the node at once loses nothing.
    edge.kill9();
    let edge = Edge::serve_in(&apps, &data, &[], &[]);
    assert_eq!(ask(&edge, "a", "/k").await, "from a");
    assert_eq!(ask(&edge, "b", "/k").await, "from b");
    // Past its max-age of 1 s: gone, after the restart as before it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
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

/// An origin on loopback that counts its requests and answers `hit N` with `no-store`.
async fn counting_origin() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = format!("hit {n}");
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(res.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

/// `fetch` with `cf.cacheTtl`, `cf.cacheTtlByStatus` or `cf.cacheKey` goes through the app's
/// default cache, as a Worker's subrequest goes through Cloudflare's; without them it does not.
#[tokio::test]
async fn fetch_with_cf_cache_options_goes_through_the_default_cache() {
    let dir = scratch_app(
        "cache-fetch",
        "name = \"cache-fetch\"\nmain = \"index.js\"\n\n[outbound]\nallow_private = true\n",
        r#"const MODES = {
  ttl: { cacheTtl: 300 },
  never: { cacheTtlByStatus: { "200-299": -1 } },
  key: { cacheTtl: 300, cacheKey: "one-key" },
};
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const target = url.searchParams.get("url");
    const mode = url.searchParams.get("mode");
    if (mode === "peek") {
      const key = url.searchParams.get("key");
      const hit = await caches.default.match(new Request("https://peek.test/", { cf: { cacheKey: key } }));
      return new Response(hit ? await hit.text() : "miss");
    }
    const cf = MODES[mode];
    const res = await fetch(target, cf ? { cf } : {});
    return Response.json({ text: await res.text(), status: res.headers.get("cf-cache-status"), url: res.url });
  },
};
"#,
    );
    let (port, hits) = counting_origin().await;
    let edge = Edge::dev_dir(&dir, &[]);
    let c = client();
    let get = |path: String| {
        let c = c.clone();
        let url = edge.url(&path);
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let origin = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let json = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap();
    // Stored as the first response is read; wait until the cache has it (its writer commits
    // in the background).
    let wait_cached = |key: String| async move {
        for _ in 0..100 {
            if get(format!("/?mode=peek&key={key}")).await != "miss" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{key} never reached the cache");
    };

    // cacheTtl: stored despite the origin's no-store; the second fetch never reaches it.
    let first = json(get(format!("/?mode=ttl&url={}", origin("/a"))).await);
    assert_eq!(first["text"], "hit 1");
    wait_cached(origin("/a")).await;
    let second = json(get(format!("/?mode=ttl&url={}", origin("/a"))).await);
    assert_eq!(second["text"], "hit 1", "{second}");
    assert_eq!(second["status"], "HIT");
    assert_eq!(second["url"], origin("/a"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A negative cacheTtlByStatus for its status: not stored.
    for want in ["hit 2", "hit 3"] {
        let got = json(get(format!("/?mode=never&url={}", origin("/b"))).await);
        assert_eq!(got["text"], want);
    }
    // No cf cache options: the origin's no-store holds, every fetch reaches it.
    for want in ["hit 4", "hit 5"] {
        let got = json(get(format!("/?url={}", origin("/a"))).await);
        assert_eq!(got["text"], want);
        assert_eq!(got["status"], serde_json::Value::Null);
    }
    // cacheKey: two URLs, one entry.
    let keyed = json(get(format!("/?mode=key&url={}", origin("/c1"))).await);
    assert_eq!(keyed["text"], "hit 6");
    wait_cached("one-key".into()).await;
    let keyed = json(get(format!("/?mode=key&url={}", origin("/c2"))).await);
    assert_eq!(keyed["text"], "hit 6");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 6);
}

/// Polls `app`'s `/` until its status is `want` (the node follows its apps folder).
async fn until_status(edge: &Edge, app: &str, want: u16) {
    for _ in 0..250 {
        let res = client()
            .get(edge.url("/"))
            .header("host", format!("{app}.localhost"))
            .send()
            .await
            .unwrap();
        if res.status() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("{app} never answered {want}; log:\n{}", edge.logs());
}

/// A name the node stops serving loses its entries: whoever deploys that name next (another
/// tenant, perhaps) starts with an empty cache.
#[tokio::test]
async fn an_app_removed_from_the_node_leaves_no_entries_for_the_next_app_of_its_name() {
    let apps = scratch("cache-removed-apps");
    two_apps(&apps);
    let edge = Edge::serve(&apps, &[]);
    assert_eq!(ask(&edge, "a", "/secret?op=put").await, "put");
    assert_eq!(ask(&edge, "a", "/secret").await, "from a");
    let kept = scratch("cache-removed-kept").join("a");
    std::fs::rename(apps.join("a"), &kept).unwrap();
    until_status(&edge, "a", 404).await;
    std::fs::rename(&kept, apps.join("a")).unwrap();
    until_status(&edge, "a", 200).await;
    assert_eq!(ask(&edge, "a", "/secret").await, "miss");
    // The other app's entries were not touched.
    assert_eq!(ask(&edge, "b", "/secret").await, "miss");
}

/// Keys and headers past their bounds are not stored (a key can be a 16 MiB `cf.cacheKey`,
/// headers as large as a script likes): the puts resolve, nothing is held, the node serves.
#[tokio::test]
async fn oversized_keys_and_headers_are_not_stored() {
    let dir = scratch_app(
        "cache-oversized",
        "name = \"cache-oversized\"\nmain = \"index.js\"\n",
        r#"export default {
  async fetch() {
    const c = caches.default;
    const cc = { "cache-control": "max-age=60" };
    const longKey = new Request("https://x.test/", { cf: { cacheKey: "k".repeat(17 << 10) } });
    await c.put(longKey, new Response("a", { headers: cc }));
    const bigHeaders = new Response("b", { headers: { ...cc, "x-big": "v".repeat(129 << 10) } });
    await c.put("https://x.test/big-headers", bigHeaders);
    await c.put("https://x.test/fine", new Response("c", { headers: cc }));
    return Response.json({
      longKey: (await c.match(longKey)) === undefined,
      bigHeaders: (await c.match("https://x.test/big-headers")) === undefined,
      fine: await (await c.match("https://x.test/fine")).text(),
    });
  },
};
"#,
    );
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        serde_json::json!({ "longKey": true, "bigHeaders": true, "fine": "c" })
    );
}
