//! Rust compiled to WebAssembly components (`wasi:http/proxy`), run by the real binary: the
//! example and the test fixture are built with cargo for `wasm32-wasip2`, then served next to
//! JavaScript apps under the same router and limits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Edge, client, copy_dir, edge_command, fixture, scratch};

/// Builds the wasm crate in `dir` (its own workspace) for `wasm32-wasip2`, release, and
/// returns `dir`. Serialised: cargo would wait on its own lock anyway.
fn built(dir: &Path) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        // The host build's settings are not the guest's.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

/// The test fixture, built.
fn hostile() -> PathBuf {
    built(&fixture("wasm-hostile"))
}

/// The fixture's component file.
fn hostile_wasm() -> PathBuf {
    hostile().join("target/wasm32-wasip2/release/wasm_hostile.wasm")
}

/// An app folder under `apps` named `name` running the fixture's component, with `extra`
/// appended to its edge.toml.
fn wasm_app(apps: &Path, name: &str, extra: &str) -> PathBuf {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(hostile_wasm(), dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"app.wasm\"\n{extra}\n"),
    )
    .unwrap();
    dir
}

fn dev(dir: &Path, extra: &[&str]) -> Edge {
    Edge::dev_dir(dir, extra)
}

async fn get(edge: &Edge, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let res = client().get(edge.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap(), headers)
}

fn edge_error(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("edge-error")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn the_rust_example_answers() {
    let dir = built(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-rust"));
    let edge = dev(&dir, &[]);
    let (status, body, headers) = get(&edge, "/some/path?x=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Hello from wasm at /some/path?x=1\n");
    assert_eq!(headers["content-type"], "text/plain");
}

#[tokio::test]
async fn method_headers_status_and_body_cross_both_ways() {
    let edge = dev(&hostile(), &[]);
    let res = client()
        .post(edge.url("/echo"))
        .header("x-in", "from the client")
        .body("x".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-echo"], "from the client");
    let body = res.text().await.unwrap();
    assert!(
        body.starts_with("Method::Post 100000 bytes: xxx"),
        "{}",
        &body[..body.len().min(60)]
    );
    assert_eq!(body.len(), "Method::Post 100000 bytes: ".len() + 100_000);
}

#[tokio::test]
async fn a_streamed_body_arrives_chunk_by_chunk() {
    let edge = dev(&hostile(), &[]);
    let mut res = client().get(edge.url("/stream?n=4")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    let first = res.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let mut rest = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let all_at = started.elapsed();
    let mut body = first.to_vec();
    body.extend_from_slice(&rest);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\n"
    );
    // The guest sleeps 50 ms after each chunk: the first came before the rest were written.
    assert!(
        all_at >= first_at + Duration::from_millis(100),
        "{first_at:?} then {all_at:?}"
    );
}

/// A guest that traps after its response started: the client sees the body cut, not a
/// complete response.
#[tokio::test]
async fn a_trap_mid_body_cuts_the_body() {
    let edge = dev(&hostile(), &[]);
    let mut res = client().get(edge.url("/trap-late")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut got = Vec::new();
    let outcome = loop {
        match res.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(got, b"partial");
    assert!(
        outcome.is_err(),
        "the body must end with an error, not cleanly"
    );
}

/// Each limit, broken by a wasm guest, answers its `edge-error`; the app and a JavaScript
/// neighbour on the same node keep serving while it happens.
#[tokio::test]
async fn hostile_guests_hit_their_limits_and_neighbours_keep_serving() {
    let apps = scratch("wasm-node");
    wasm_app(
        &apps,
        "hostile",
        "routes = [\"hostile.test/*\"]\n[limits]\ncpu_ms = 50\nmemory_mb = 32\nwall_ms = 1500",
    );
    copy_dir(&fixture("node-basic/alpha"), &apps.join("alpha"));
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    let ask = |host: &'static str, path: &'static str| {
        let req = c.get(edge.url(path)).header("host", host);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let error = res
                .headers()
                .get("edge-error")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, error, res.text().await.unwrap())
        }
    };
    for (path, status, error, within) in [
        ("/loop", 503, "cpu-limit", Duration::from_secs(3)),
        ("/grow", 503, "memory-limit", Duration::from_secs(5)),
        ("/trap", 500, "script-error", Duration::from_secs(5)),
        ("/resources", 500, "script-error", Duration::from_secs(5)),
        (
            "/sleep?ms=60000",
            503,
            "wall-limit",
            Duration::from_millis(1500 + 1500),
        ),
    ] {
        let started = Instant::now();
        let hostile = tokio::spawn(ask("hostile.test", path));
        // The neighbour answers while the guest misbehaves.
        let (s, _, body) = ask("alpha.test", "/").await;
        assert_eq!(s, 200, "alpha during {path}: {body}");
        let (s, e, body) = hostile.await.unwrap();
        assert_eq!((s, e.as_str()), (status, error), "{path}: {body}");
        assert!(
            started.elapsed() < within,
            "{path} took {:?}",
            started.elapsed()
        );
        // And the wasm app itself still serves.
        let (s, _, body) = ask("hostile.test", "/").await;
        assert_eq!((s, body.as_str()), (200, "ok"), "after {path}");
    }
    let logs = edge.logs();
    assert!(
        logs.contains("wasm backtrace"),
        "the trap's backtrace is logged:\n{logs}"
    );
    assert!(
        logs.contains("the fixture panics on purpose"),
        "the guest's panic message is logged:\n{logs}"
    );
}

/// The CPU limit counts CPU, not time waiting: a guest that sleeps past its CPU budget is
/// not stopped for it.
#[tokio::test]
async fn sleeping_is_not_charged_as_cpu() {
    let apps = scratch("wasm-sleep");
    let dir = wasm_app(&apps, "sleeper", "[limits]\ncpu_ms = 5\nwall_ms = 5000");
    let edge = dev(&dir, &[]);
    let (status, body, headers) = get(&edge, "/sleep?ms=300").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "slept"),
        "{:?}",
        edge_error(&headers)
    );
}

/// A one-shot HTTP server on loopback answering "from upstream"; yields the request it saw.
async fn upstream(requests: usize) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap();
            let res =
                "HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\nfrom upstream";
            s.write_all(res.as_bytes()).await.unwrap();
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        seen
    });
    (port, task)
}

#[tokio::test]
async fn outbound_requests_follow_the_fetch_rules() {
    // Private addresses are refused unless the app asks (and, on a node, the operator grants).
    let apps = scratch("wasm-outbound");
    let (port, _never) = upstream(1).await;
    let denied = wasm_app(&apps, "denied", "");
    let edge = dev(&denied, &[]);
    for target in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/"),
    ] {
        let res = client()
            .get(edge.url("/fetch"))
            .query(&[("url", target.as_str())])
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap();
        assert!(
            body.starts_with("error ErrorCode::DestinationIpProhibited"),
            "{target}: {body}"
        );
    }
    drop(edge);

    // Granted: it reaches loopback, with edge's User-Agent; the fourth request of an
    // invocation allowed three answers `503 subrequest-limit`.
    let apps = scratch("wasm-outbound-granted");
    let dir = wasm_app(
        &apps,
        "granted",
        "[outbound]\nallow_private = true\n[limits]\nsubrequests = 3",
    );
    let edge = dev(&dir, &[]);
    // `n` requests from the guest to a fresh upstream answering three.
    let fetch_n = async |n: &str| {
        let (port, seen) = upstream(3).await;
        let url = format!("http://127.0.0.1:{port}/hello");
        let res = client()
            .get(edge.url("/fetch"))
            .query(&[("url", url.as_str()), ("n", n)])
            .send()
            .await
            .unwrap();
        (res, seen)
    };
    let (res, seen) = fetch_n("3").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "200 from upstream\n".repeat(3));
    let first = seen.await.unwrap()[0].to_ascii_lowercase();
    assert!(first.starts_with("get /hello http/1.1"), "{first}");
    assert!(first.contains("user-agent: edge/"), "{first}");
    let (res, _seen) = fetch_n("4").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "subrequest-limit");
}

#[tokio::test]
async fn vars_are_the_guests_environment() {
    let edge = dev(&hostile(), &[]);
    let (status, body, _) = get(&edge, "/env").await;
    assert_eq!(status, 200);
    let mut vars: Vec<&str> = body.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        ["COUNT=3", "GREETING=hello"],
        "only the app's vars: {body}"
    );
}

#[tokio::test]
async fn guest_output_is_the_apps_console() {
    let edge = dev(&hostile(), &[]);
    let (status, body, _) = get(&edge, "/log").await;
    assert_eq!((status, body.as_str()), (200, "logged"));
    let line = edge.wait_for_event("hello from the guest's stdout", Duration::from_secs(5));
    assert_eq!(line["target"], "edge::console", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    let line = edge.wait_for_event("and from its stderr", Duration::from_secs(5));
    assert_eq!(line["level"], "ERROR", "{line}");
}

/// A file that is not a component, or a component that is not a wasi:http handler, is a
/// load error naming the file; the node keeps serving its other apps.
#[tokio::test]
async fn a_broken_component_is_a_load_error_with_its_file() {
    let apps = scratch("wasm-broken");
    let garbage = apps.join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("app.wasm"), b"\0asm not really").unwrap();
    std::fs::write(
        garbage.join("edge.toml"),
        "name = \"garbage\"\nmain = \"app.wasm\"\nroutes = [\"garbage.test/*\"]\n",
    )
    .unwrap();
    copy_dir(&fixture("node-basic/alpha"), &apps.join("alpha"));
    let edge = Edge::serve(&apps, &[]);
    let res = client()
        .get(edge.url("/"))
        .header("host", "garbage.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "load-error");
    let res = client()
        .get(edge.url("/"))
        .header("host", "alpha.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let logs = edge.logs();
    assert!(
        logs.contains("garbage/app.wasm"),
        "the log names the file:\n{logs}"
    );

    let out = edge_command(&["check", garbage.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "edge check must fail: {stderr}");
    assert!(stderr.contains("app.wasm"), "{stderr}");
}

/// A compiled component is cached on disk, keyed by its content: a restart loads it
/// instead of compiling again.
#[tokio::test]
async fn compiled_components_are_cached_across_restarts() {
    let apps = scratch("wasm-cache");
    let dir = wasm_app(&apps, "cached", "");
    let cache = scratch("wasm-cache-dir");
    let cache_env = [("EDGE_CACHE_DIR", cache.to_str().unwrap())];
    let args = ["dev", dir.to_str().unwrap(), "--port", "0"];
    let artifacts = || -> Vec<(PathBuf, std::time::SystemTime)> {
        std::fs::read_dir(cache.join("wasm"))
            .map(|d| {
                d.map(|e| {
                    let e = e.unwrap();
                    (e.path(), e.metadata().unwrap().modified().unwrap())
                })
                .collect()
            })
            .unwrap_or_default()
    };
    {
        let edge = Edge::start_with_env(&args, &cache_env);
        let (status, body, _) = get(&edge, "/").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    let first = artifacts();
    assert_eq!(first.len(), 1, "one compiled component: {first:?}");
    assert!(first[0].0.extension().is_some_and(|e| e == "cwasm"));
    {
        let edge = Edge::start_with_env(&args, &cache_env);
        let (status, body, _) = get(&edge, "/").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    assert_eq!(
        artifacts(),
        first,
        "the restart reused the cached compilation"
    );
}

/// An example's folder, built.
fn example(name: &str) -> PathBuf {
    built(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name),
    )
}

/// KV from wasm (`wasi:keyvalue`, through the SDK) and from JavaScript share a namespace id:
/// each sees what the other wrote.
#[tokio::test]
async fn kv_is_shared_between_a_wasm_app_and_a_javascript_app() {
    let counter = example("kv-counter-rust");
    let apps = scratch("wasm-kv");
    let wasm = apps.join("counter");
    std::fs::create_dir_all(&wasm).unwrap();
    std::fs::copy(
        counter.join("target/wasm32-wasip2/release/kv_counter_rust.wasm"),
        wasm.join("app.wasm"),
    )
    .unwrap();
    std::fs::write(
        wasm.join("edge.toml"),
        "name = \"counter\"\nmain = \"app.wasm\"\nroutes = [\"wasm.test/*\"]\n[[kv_namespaces]]\nbinding = \"COUNTS\"\nid = \"counts\"\n",
    )
    .unwrap();
    let js = apps.join("js");
    std::fs::create_dir_all(&js).unwrap();
    std::fs::write(
        js.join("edge.toml"),
        "name = \"js\"\nmain = \"index.js\"\nroutes = [\"js.test/*\"]\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"counts\"\n",
    )
    .unwrap();
    std::fs::write(
        js.join("index.js"),
        r#"export default {
  async fetch(request, env) {
    const key = new URL(request.url).pathname.slice(1);
    if (request.method === "PUT") {
      await env.KV.put(key, await request.text());
      return new Response("stored");
    }
    return new Response(String(await env.KV.get(key)));
  },
};
"#,
    )
    .unwrap();
    let edge = Edge::serve(&apps, &["--share-kv", "counts"]);
    let c = client();
    let ask = async |method: reqwest::Method, host: &str, path: &str, body: &str| {
        let res = c
            .request(method, edge.url(path))
            .header("host", host)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{host}{path}: {}", res.status());
        res.text().await.unwrap()
    };
    let get = reqwest::Method::GET;
    for n in 1..=2 {
        let got = ask(get.clone(), "wasm.test", "/hello", "").await;
        assert_eq!(got, format!("/hello has been visited {n} times\n"));
    }
    let got = ask(get.clone(), "js.test", "/hello", "").await;
    assert_eq!(got, "2", "JavaScript reads what wasm wrote");
    let got = ask(reqwest::Method::PUT, "js.test", "/from-js", "41").await;
    assert_eq!(got, "stored");
    let got = ask(get.clone(), "wasm.test", "/from-js", "").await;
    assert_eq!(
        got, "/from-js has been visited 42 times\n",
        "wasm reads (and increments) what JavaScript wrote"
    );
    let got = ask(get, "wasm.test", "/", "").await;
    assert_eq!(got, "from-js 42\nhello 2\n");
}

/// A wasm app sends to a queue, consumes it (ack, retry), and runs a cron: the queue-rust
/// example, through the real binary.
#[tokio::test]
async fn a_wasm_app_produces_consumes_and_runs_its_cron() {
    let dir = example("queue-rust");
    let state = scratch("wasm-queue-state");
    let edge = dev(
        &dir,
        &["--persist-to", state.to_str().unwrap(), "--test-scheduled"],
    );
    let c = client();
    for job in ["hello", "world", "fail"] {
        let res = c.post(edge.url("/jobs")).body(job).send().await.unwrap();
        assert_eq!(res.status(), 202, "{job}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let listing = loop {
        let (_, body, _) = get(&edge, "/").await;
        if body.matches("job:").count() == 2 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs were not done: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut values: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("job:"))
        .map(|l| l.rsplit(" = ").next().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["HELLO", "WORLD"]);
    // The failing job is retried (a second delivery is logged by the guest).
    edge.wait_for_event("failed (attempt 2)", Duration::from_secs(20));

    let res = c
        .get(edge.url("/__scheduled"))
        .query(&[("cron", "*/5 * * * *")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, body, _) = get(&edge, "/").await;
    assert!(body.contains("cron:last = */5 * * * * "), "{body}");
}
