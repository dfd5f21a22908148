//! The corpus: Worker projects written as Workers are written (TypeScript and JavaScript,
//! `wrangler.toml` and `wrangler.jsonc`, several modules, `node_modules` with ESM and CommonJS
//! packages), each in `tests/fixtures/corpus/<name>/` with an `expect.json` of requests and
//! the answers Cloudflare Workers gives them. Each project is checked with `edge check` and
//! run with `edge dev` on a fresh copy; its requests go in order (state carries over).
//!
//! `expect.json`: `about`; `v8_only` (why the project needs V8: it is not run on the QuickJS
//! build); `dev_args` (more `edge dev` arguments); `check_warnings` (text each
//! `edge check` warning must contain; none allowed when absent); `requests`, each with `path`
//! and `status`, and optionally `method`, `headers`, `body` (text) or `json` (sent as JSON),
//! `response_headers` (exact values), `response_json` (exact), `response_body` (exact text),
//! `response_contains` (substrings), `poll_ms` (retried every 100 ms until it matches).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Edge, client, copy_dir, edge_command, fixture, scratch};
// `client()` also installs the TLS provider reqwest needs; the corpus's own client is built
// after it.

/// Every project in the corpus, each run whole; the failures of all are reported together.
#[tokio::test]
async fn every_corpus_project_answers_as_workers_does() {
    let corpus = fixture("corpus");
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expect.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 12, "the corpus has only {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        if let Err(e) = run_project(&corpus.join(name), name).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus projects failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}

async fn run_project(source: &Path, name: &str) -> Result<(), String> {
    let expect: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("expect.json")).unwrap())
            .map_err(|e| format!("expect.json: {e}"))?;
    if cfg!(feature = "quickjs")
        && let Some(why) = expect["v8_only"].as_str()
    {
        eprintln!("{name}: not run on the QuickJS build: it {why}");
        return Ok(());
    }
    let dir = scratch(name).join(name);
    copy_dir(source, &dir);

    let out = edge_command(&["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("edge check failed:\n{stderr}"));
    }
    let warnings: Vec<&str> = expect["check_warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for want in &warnings {
        if !stderr.contains(want) {
            return Err(format!("edge check did not warn {want:?}:\n{stderr}"));
        }
    }
    if stderr.matches("warning:").count() != warnings.len() {
        return Err(format!(
            "edge check warned {} times, expected {}:\n{stderr}",
            stderr.matches("warning:").count(),
            warnings.len()
        ));
    }

    let args: Vec<String> = expect["dev_args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let edge = Edge::dev_dir(&dir, &args);
    // Redirects are answers to check, not to follow.
    let _ = client();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .unwrap();
    for (i, req) in expect["requests"]
        .as_array()
        .ok_or("expect.json has no requests")?
        .iter()
        .enumerate()
    {
        let poll = Duration::from_millis(req["poll_ms"].as_u64().unwrap_or(0));
        let started = Instant::now();
        loop {
            match exchange(&c, &edge, req).await {
                Ok(()) => break,
                Err(_) if started.elapsed() < poll => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => {
                    return Err(format!(
                        "request {i} ({} {}): {e}\nlogs:\n{}",
                        req["method"].as_str().unwrap_or("GET"),
                        req["path"].as_str().unwrap_or_default(),
                        tail(&edge.logs(), 3000)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Sends one request of a project and compares the answer with what it expects.
async fn exchange(c: &reqwest::Client, edge: &Edge, req: &Value) -> Result<(), String> {
    let method = req["method"].as_str().unwrap_or("GET");
    let path = req["path"].as_str().ok_or("a request has no path")?;
    let mut builder = c.request(method.parse().map_err(|_| "bad method")?, edge.url(path));
    if let Some(headers) = req["headers"].as_object() {
        for (k, v) in headers {
            builder = builder.header(k, v.as_str().unwrap_or_default());
        }
    }
    if let Some(body) = req["body"].as_str() {
        builder = builder.body(body.to_string());
    } else if !req["json"].is_null() {
        builder = builder.json(&req["json"]);
    }
    let res = builder.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let raw = res.bytes().await.map_err(|e| e.to_string())?;
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&decode(encoding, &raw)).into_owned();
    let want_status = req["status"].as_u64().ok_or("a request has no status")?;
    if u64::from(status) != want_status {
        return Err(format!(
            "status {status}, expected {want_status}; body: {body}"
        ));
    }
    if let Some(want) = req["response_headers"].as_object() {
        for (name, value) in want {
            let got = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            if got != value.as_str() {
                return Err(format!("header {name}: {got:?}, expected {value}"));
            }
        }
    }
    if !req["response_json"].is_null() {
        let got: Value =
            serde_json::from_str(&body).map_err(|e| format!("body is not JSON ({e}): {body}"))?;
        if got != req["response_json"] {
            return Err(format!(
                "JSON body {got}, expected {}",
                req["response_json"]
            ));
        }
    }
    if let Some(want) = req["response_body"].as_str()
        && body != want
    {
        return Err(format!("body {body:?}, expected {want:?}"));
    }
    for want in req["response_contains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !body.contains(want) {
            return Err(format!("body does not contain {want:?}: {body}"));
        }
    }
    Ok(())
}

/// A body as sent, decoded from its `Content-Encoding`.
fn decode(encoding: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let done = match encoding {
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(raw).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(raw).read_to_end(&mut out),
        "br" => brotli::Decompressor::new(raw, 4096).read_to_end(&mut out),
        _ => return raw.to_vec(),
    };
    match done {
        Ok(_) => out,
        Err(_) => raw.to_vec(),
    }
}

fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
