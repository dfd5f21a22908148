//! The KV binding through real Workers-style scripts over HTTP, the `edge kv` CLI against
//! running and stopped nodes, and a kill -9 crash test of durable writes.

mod api;
mod apps;
mod crash;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Edge, copy_dir, edge_bin, fixture, scratch};

/// `edge dev` on a copy of the `kv` fixture with its state in a scratch dir.
/// `kv-apps` has two apps binding one namespace: the node must be told they share it.
pub(super) const SHARE: &[&str] = &["--share-kv", "shared"];

pub(super) fn kv_dev(extra_env: &[(&str, &str)]) -> (Edge, std::path::PathBuf) {
    let app = scratch("kv-app");
    copy_dir(&fixture("kv"), &app);
    let state = scratch("kv-state");
    let edge = Edge::start_with_env(
        &[
            "dev",
            app.to_str().unwrap(),
            "--port",
            "0",
            "--persist-to",
            state.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        extra_env,
    );
    (edge, state)
}

pub(super) async fn call(c: &reqwest::Client, method: &str, url: String, body: Vec<u8>) -> Value {
    let res = c
        .request(method.parse().unwrap(), &url)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{method} {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// Runs `edge kv ARGS`; returns (success, stdout, stderr).
pub(super) fn cli(args: &[&str], stdin: Option<&[u8]>) -> (bool, Vec<u8>, String) {
    use std::io::Write;
    let mut child = Command::new(edge_bin())
        .arg("kv")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(super) fn cli_list(data: &Path, ns: &str) -> Vec<String> {
    let (ok, out, err) = cli(
        &["list", "-n", ns, "--data-dir", data.to_str().unwrap()],
        None,
    );
    assert!(ok, "edge kv list failed: {err}");
    let keys: Vec<Value> = serde_json::from_slice(&out).unwrap();
    keys.iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect()
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
