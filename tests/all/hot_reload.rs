//! Hot reload: `edge dev` and `edge serve` watch their apps and serve a saved change without
//! a signal, whichever way the editor saved it; a broken change never takes the app down; a
//! file still being written is not loaded; and reloads under a steady stream of requests lose
//! none of them.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Edge, client, scratch};

fn says(text: &str) -> String {
    format!("export default {{ fetch() {{ return new Response({text:?}); }} }};\n")
}

fn write_app(dir: &Path, name: &str, routes: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"index.js\"\nroutes = [{routes}]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), body).unwrap();
}

/// GETs `/` (with `host`) until the body is `want`, for up to 20 s; returns the last body.
async fn until_body(c: &reqwest::Client, edge: &Edge, host: Option<&str>, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut req = c.get(edge.url("/"));
        if let Some(host) = host {
            req = req.header("host", host);
        }
        let body = match req.send().await {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(e) => format!("request failed: {e}"),
        };
        if body == want || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `apps reloaded` events logged so far.
fn reloads(edge: &Edge) -> Vec<serde_json::Value> {
    edge.events()
        .into_iter()
        .filter(|e| e["message"] == "apps reloaded")
        .collect()
}

/// Waits until at least `n` `apps reloaded` events were logged; returns the `n`th.
fn nth_reload(edge: &Edge, n: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = reloads(edge);
        if done.len() >= n {
            return done[n - 1].clone();
        }
        assert!(Instant::now() < deadline, "no reload {n}:\n{}", edge.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_dev_serves_a_saved_change_however_the_editor_saves_it() {
    let dir = scratch("hot-dev");
    write_app(&dir, "hot", "", &says("v1"));
    let edge = Edge::dev_dir(&dir, &[]);
    let c = client();
    assert_eq!(until_body(&c, &edge, None, "v1").await, "v1");

    // Written in place.
    std::fs::write(dir.join("index.js"), says("v2")).unwrap();
    assert_eq!(until_body(&c, &edge, None, "v2").await, "v2");

    // Written to another file and renamed over it (vim, VS Code, JetBrains' safe write).
    std::fs::write(dir.join("index.js.saving"), says("v3")).unwrap();
    std::fs::rename(dir.join("index.js.saving"), dir.join("index.js")).unwrap();
    assert_eq!(until_body(&c, &edge, None, "v3").await, "v3");

    // Truncated, then written slowly: the half written file (not valid JavaScript) is never
    // loaded, because it is still open for writing.
    let failures_before = edge.logs().matches("failed to load").count();
    {
        let mut f = std::fs::File::create(dir.join("index.js")).unwrap();
        let text = says("v4");
        let (head, tail) = text.split_at(text.len() / 2);
        f.write_all(head.as_bytes()).unwrap();
        f.flush().unwrap();
        // Requests meanwhile keep getting the old version.
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            let body = c
                .get(edge.url("/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "v3", "while the file was half written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        f.write_all(tail.as_bytes()).unwrap();
    }
    assert_eq!(until_body(&c, &edge, None, "v4").await, "v4");
    assert_eq!(
        edge.logs().matches("failed to load").count(),
        failures_before,
        "a half written file was loaded:\n{}",
        edge.logs()
    );

    // The reload line says how long it took.
    let last = reloads(&edge).pop().expect("reloads were logged");
    assert!(last["took_ms"].as_f64().is_some(), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_save_keeps_the_old_version_and_edge_dev_shows_why_once() {
    let dir = scratch("hot-broken");
    write_app(&dir, "broken", "", &says("good"));
    let edge = Edge::dev_dir(&dir, &[]);
    let c = client();
    assert_eq!(until_body(&c, &edge, None, "good").await, "good");

    std::fs::write(
        dir.join("index.js"),
        "// a comment\nexport default { fetch( {\n",
    )
    .unwrap();
    let report = tokio::task::block_in_place(|| nth_reload(&edge, 1));
    assert_eq!(report["failed"], r#"["broken"]"#, "{report}");

    // The next request shows the error, with where it is; the ones after get the old version.
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "load-error");
    let body: serde_json::Value = res.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("index.js:2:") || message.contains("index.js:3:"),
        "no file:line in {message:?}"
    );
    assert_eq!(until_body(&c, &edge, None, "good").await, "good");
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "good",
        "the error was shown twice"
    );
    // And the terminal has it too.
    assert!(edge.logs().contains("index.js:"), "{}", edge.logs());

    // A bad edge.toml: the same.
    std::fs::write(dir.join("edge.toml"), "name = [\n").unwrap();
    let report = tokio::task::block_in_place(|| nth_reload(&edge, 2));
    assert!(
        report.to_string().contains("edge.toml") || edge.logs().contains("edge.toml"),
        "{report}"
    );
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.headers()["edge-error"], "config-error");
    assert_eq!(until_body(&c, &edge, None, "good").await, "good");

    // Fixed: the new version serves.
    write_app(&dir, "broken", "", &says("fixed"));
    assert_eq!(until_body(&c, &edge, None, "fixed").await, "fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_serve_starts_a_new_app_folder_and_stops_a_removed_one() {
    let apps = scratch("hot-serve");
    write_app(&apps.join("one"), "one", "\"one.test/*\"", &says("one"));
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    assert_eq!(until_body(&c, &edge, Some("one.test"), "one").await, "one");

    write_app(&apps.join("two"), "two", "\"two.test/*\"", &says("two"));
    assert_eq!(until_body(&c, &edge, Some("two.test"), "two").await, "two");

    std::fs::remove_dir_all(apps.join("one")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = c
            .get(edge.url("/"))
            .header("host", "one.test")
            .send()
            .await
            .unwrap();
        if res.status() == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "one.test still routed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(until_body(&c, &edge, Some("two.test"), "two").await, "two");
}

/// A hundred saves while two clients send requests without a pause: every request is
/// answered `200` by some version, each client sees versions only go forward, and each new
/// version is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_reloads_under_load_fail_no_request() {
    const SAVES: u32 = 100;
    let apps = scratch("hot-load");
    let app = apps.join("busy");
    write_app(&app, "busy", "\"busy.test/*\"", &says("0"));
    std::fs::create_dir_all(apps.join("calm")).unwrap();
    write_app(&apps.join("calm"), "calm", "\"calm.test/*\"", &says("calm"));
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    assert_eq!(until_body(&c, &edge, Some("busy.test"), "0").await, "0");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for host in ["busy.test", "busy.test", "calm.test"] {
        let (c, url, stop) = (c.clone(), edge.url("/"), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut sent, mut last) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = c.get(&url).header("host", host).send().await;
                let res = res.unwrap_or_else(|e| panic!("request {sent} to {host} failed: {e}"));
                let status = res.status();
                let body = res.text().await.unwrap();
                assert_eq!(status, 200, "request {sent} to {host}: {body}");
                if host == "calm.test" {
                    assert_eq!(body, "calm");
                } else {
                    let version: u32 = body.parse().unwrap();
                    assert!(
                        version >= last,
                        "version went back from {last} to {version}"
                    );
                    last = version;
                }
                sent += 1;
            }
            sent
        }));
    }
    for v in 1..=SAVES {
        std::fs::write(app.join("index.js"), says(&v.to_string())).unwrap();
        let body = until_body(&c, &edge, Some("busy.test"), &v.to_string()).await;
        assert_eq!(body, v.to_string(), "save {v} was not served");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.expect("a client failed");
    }
    assert!(total > SAVES, "only {total} requests were sent");
    let replaced: usize = reloads(&edge)
        .iter()
        .filter(|r| r["replaced"] == r#"["busy"]"#)
        .count();
    assert!(
        replaced >= SAVES as usize,
        "{replaced} reloads for {SAVES} saves"
    );
}
