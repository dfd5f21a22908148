//! The production node's operator surface: the admin endpoint (its own listener, bearer token
//! from a file), the app list with versions, load errors and usage, Prometheus metrics (parsed
//! with a real exposition parser), and overload answered `503 overloaded` per app while the
//! other apps keep serving.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Edge, client, scratch};

const TOKEN: &str = "an-operator-token-0123456789abcdef";

fn write_app(apps: &Path, name: &str, extra_toml: &str, body: &str) {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!(
            "name = \"{name}\"\nmain = \"index.js\"\nroutes = [\"{name}.test/*\"]\n{extra_toml}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), body).unwrap();
}

fn admin_url(data: &Path) -> String {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("admin.json")).unwrap()).unwrap();
    assert_eq!(info["token"], TOKEN, "admin.json has the operator's token");
    info["url"].as_str().unwrap().to_string()
}

async fn admin_get(c: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = c.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_lists_apps_with_usage_and_serves_metrics_to_the_token_holder() {
    let apps = scratch("admin-apps");
    let data = scratch("admin-data");
    write_app(
        &apps,
        "alpha",
        "[[kv_namespaces]]\nbinding = \"KV\"\nid = \"alpha-kv\"\n\n[[queues.producers]]\nbinding = \"JOBS\"\nqueue = \"alpha-jobs\"\n",
        "export default { async fetch(req, env) { let x = 0; for (let i = 0; i < 1e5; i++) x += i; await env.KV.get('k'); await env.JOBS.send('job'); return new Response('alpha ' + x); } };\n",
    );
    write_app(
        &apps,
        "beta",
        "",
        "export default { fetch() { return new Response('beta'); } };\n",
    );
    // An app the operator lets reach loopback tries the admin endpoint with its own fetch.
    write_app(
        &apps,
        "probe",
        "[outbound]\nallow_private = true\n",
        "export default { async fetch(req) { const url = new URL(req.url).searchParams.get('url'); try { const res = await fetch(url); return new Response('reached ' + res.status); } catch (e) { return new Response('refused: ' + e.message); } } };\n",
    );
    let token_file = data.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let edge = Edge::serve_in(
        &apps,
        &data,
        &[
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--allow-private-network",
            "probe",
        ],
        &[],
    );
    let admin = admin_url(&data);
    let c = client();
    for path in ["/v1/apps", "/metrics"] {
        let res = c
            .get(edge.url("/"))
            .header("host", "probe.test")
            .query(&[("url", format!("{admin}{path}"))])
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap();
        assert!(
            body.starts_with("refused"),
            "an app reached the admin endpoint: {body}"
        );
    }
    // The same fetch reaches other loopback services (the grant works): the app itself.
    let res = c
        .get(edge.url("/"))
        .header("host", "probe.test")
        .query(&[("url", format!("{}/", edge.url("")))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "reached 404");

    // No token, a wrong one: refused, whatever the path.
    for path in ["/v1/apps", "/metrics", "/v1/kv/namespaces"] {
        let url = format!("{admin}{path}");
        assert_eq!(admin_get(&c, &url, None).await.status(), 401, "{path}");
        assert_eq!(
            admin_get(&c, &url, Some("an-operator-token-0123456789abcdeX"))
                .await
                .status(),
            401,
            "{path}"
        );
    }

    for _ in 0..5 {
        let res = c
            .get(edge.url("/"))
            .header("host", "alpha.test")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // A change to beta that does not load: the old version serves, the admin says why.
    std::fs::write(apps.join("beta/index.js"), "export default { fetch( {\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let listing = loop {
        let res = admin_get(&c, &format!("{admin}/v1/apps"), Some(TOKEN)).await;
        assert_eq!(res.status(), 200);
        let listing: serde_json::Value = res.json().await.unwrap();
        let beta = listing["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "beta")
            .cloned()
            .unwrap();
        if beta["last_error"].is_string() {
            break listing;
        }
        assert!(Instant::now() < deadline, "no load error listed: {listing}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let apps_listed = listing["apps"].as_array().unwrap();
    let alpha = apps_listed.iter().find(|a| a["name"] == "alpha").unwrap();
    let beta = apps_listed.iter().find(|a| a["name"] == "beta").unwrap();
    assert!(
        beta["last_error"].as_str().unwrap().contains("index.js"),
        "{beta}"
    );
    assert_eq!(alpha["last_error"], serde_json::Value::Null);
    assert_eq!(alpha["version"].as_str().unwrap().len(), 16, "{alpha}");
    assert_eq!(alpha["status"], "running");
    assert_eq!(alpha["engine"], "javascript");
    let usage = &alpha["usage"];
    assert_eq!(usage["invocations"], 5, "{usage}");
    assert_eq!(usage["responses"]["2xx"], 5, "{usage}");
    assert!(usage["cpu_ms"].as_f64().unwrap() > 0.0, "{usage}");
    assert!(usage["wall_ms"].as_f64().unwrap() > 0.0, "{usage}");
    // GB-seconds: the memory limit (128 MiB) times the wall-clock time.
    let gbs = usage["gb_seconds"].as_f64().unwrap();
    let expected = 0.125 * usage["wall_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (gbs - expected).abs() <= expected * 0.05 + 1e-6,
        "{gbs} GB-s for {usage}"
    );

    // The metrics, as Prometheus reads them.
    let res = admin_get(&c, &format!("{admin}/metrics"), Some(TOKEN)).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("the exposition does not parse: {e}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    };
    assert_eq!(
        value("edge_requests_total", &[("app", "alpha"), ("class", "2xx")]),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value("edge_invocations_total", &[("app", "alpha")]),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value("edge_request_duration_seconds_count", &[("app", "alpha")])
            .or_else(|| value("edge_request_duration_seconds", &[("app", "alpha")])),
        Some(5.0),
        "{text}"
    );
    assert!(value("edge_cpu_seconds_total", &[("app", "alpha")]).unwrap() > 0.0);
    assert_eq!(value("edge_apps", &[]), Some(3.0), "{text}");
    // The bindings' own: KV operations by namespace and kind, queue depth by state.
    assert_eq!(
        value(
            "edge_kv_operations_total",
            &[("namespace", "alpha-kv"), ("op", "get")]
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(
            "edge_queue_messages",
            &[("queue", "alpha-jobs"), ("state", "ready")]
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value("edge_apps_with_load_errors", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "edge_terminations_total",
            &[("app", "alpha"), ("reason", "cpu_ms")]
        ),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_app_answers_503_overloaded_while_the_others_keep_serving() {
    let apps = scratch("overload");
    write_app(
        &apps,
        "slow",
        "[limits]\nconcurrent_requests = 2\n",
        "export default { async fetch() { await new Promise((r) => setTimeout(r, 3000)); return new Response('slow'); } };\n",
    );
    write_app(
        &apps,
        "fast",
        "[limits]\nrequest_body_mb = 1\n",
        "export default { async fetch(req) { return new Response('fast ' + (await req.text()).length); } };\n",
    );
    let edge = Edge::serve(&apps, &["--request-wait-ms", "200"]);
    let c = client();
    assert_eq!(
        c.get(edge.url("/"))
            .header("host", "fast.test")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "fast 0"
    );

    // Ten at once to an app that serves two at a time: two are served, the rest get a 503
    // that says so and when to retry (two after waiting in line, the others at once).
    let mut flood = Vec::new();
    for _ in 0..10 {
        let (c, url) = (c.clone(), edge.url("/"));
        flood.push(tokio::spawn(async move {
            let res = c.get(url).header("host", "slow.test").send().await.unwrap();
            let status = res.status().as_u16();
            let error = res
                .headers()
                .get("edge-error")
                .map(|v| v.to_str().unwrap().to_string());
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, error, retry)
        }));
    }
    // Meanwhile another app answers as it always does: it does not wait behind the flood.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let res = c
        .get(edge.url("/"))
        .header("host", "fast.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the other app waited {:?} behind the flood",
        started.elapsed()
    );
    let mut served = 0;
    let mut overloaded = 0;
    for f in flood {
        match f.await.unwrap() {
            (200, None, None) => served += 1,
            (503, Some(e), Some(retry)) if e == "overloaded" => {
                assert_eq!(retry, "1");
                overloaded += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((served, overloaded), (2, 8));

    // The app's own request-size limit (1 MiB), below the node's.
    let res = c
        .post(edge.url("/"))
        .header("host", "fast.test")
        .body(vec![b'x'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["edge-error"], "payload-too-large");
    // A fresh connection: the one above closes with the body it refused unread.
    let res = client()
        .post(edge.url("/"))
        .header("host", "fast.test")
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "fast 1000");
}

/// SIGTERM: the node stops accepting, lets the request in flight and the `waitUntil` work of
/// an answered one finish (its KV write is there after a restart), and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_and_wait_until_work_finish_then_exits_0() {
    let apps = scratch("sigterm-apps");
    let data = scratch("sigterm-data");
    let dir = apps.join("late");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"late\"\nmain = \"index.js\"\nroutes = [\"late.test/*\"]\n\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"late\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        r#"const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  async fetch(req, env, ctx) {
    const url = new URL(req.url);
    if (url.pathname === "/slow") { await sleep(1000); return new Response("slow done"); }
    if (url.pathname === "/later") {
      ctx.waitUntil(sleep(1000).then(() => env.KV.put("later", "written after the response")));
      return new Response("answered");
    }
    return new Response(String(await env.KV.get("later")));
  },
};
"#,
    )
    .unwrap();
    let mut edge = Edge::serve_in(&apps, &data, &["--grace-secs", "20"], &[]);
    let c = client();
    let get = |path: &'static str| {
        let (c, url) = (c.clone(), edge.url(path));
        async move {
            c.get(url)
                .header("host", "late.test")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("/later").await, "answered");
    let slow = tokio::spawn(get("/slow"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::block_in_place(|| edge.terminate());
    assert!(status.success(), "exit status {status:?}:\n{}", edge.logs());
    assert_eq!(slow.await.unwrap(), "slow done");
    assert!(
        edge.logs()
            .contains("every request, batch and waitUntil task finished"),
        "{}",
        edge.logs()
    );
    drop(edge);

    let edge = Edge::serve_in(&apps, &data, &[], &[]);
    let c = client();
    let res = c
        .get(edge.url("/"))
        .header("host", "late.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "written after the response");
}
