//! The CLI's own commands: `new`, `check`, `--version`, and config errors.

use std::process::Command;

use crate::harness::{Edge, client, edge_bin, fixture, get_text, scratch};

#[test]
fn version_and_help_work_everywhere() {
    for args in [
        vec!["--version"],
        vec!["dev", "--version"],
        vec!["serve", "--help"],
        vec!["check", "--help"],
    ] {
        let out = Command::new(edge_bin()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
    }
    let out = Command::new(edge_bin()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("edge "));
}

#[tokio::test]
async fn new_scaffolds_an_app_that_checks_and_serves() {
    let dir = scratch("new");
    let out = Command::new(edge_bin())
        .args(["new", "my-app", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = dir.join("my-app");
    let out = Command::new(edge_bin())
        .args(["check", app.to_str().unwrap()])
        .env(
            "EDGE_CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-cache"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let edge = Edge::start(&["dev", app.to_str().unwrap(), "--port", "0"]);
    let body = get_text(&client(), &edge.url("/hi"), None).await;
    assert_eq!(body, "Hello from my-app at /hi\n");
    // A second `new` with the same name refuses to overwrite.
    let out = Command::new(edge_bin())
        .args(["new", "my-app", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn check_reports_a_syntax_error_with_file_and_line() {
    let out = Command::new(edge_bin())
        .args(["check", fixture("node-basic/broken").to_str().unwrap()])
        .env(
            "EDGE_CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-cache"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SyntaxError"), "{err}");
    assert!(err.contains("broken/index.js:"), "{err}");
}

#[test]
fn a_bad_config_names_file_key_and_line() {
    let out = Command::new(edge_bin())
        .args(["check", fixture("node-basic/bad-config").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-config/edge.toml"), "{err}");
    assert!(err.contains("unknown_key"), "{err}");
    assert!(err.contains("line 4"), "{err}");

    let out = Command::new(edge_bin())
        .args([
            "dev",
            fixture("node-basic/bad-config").to_str().unwrap(),
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_key"));
}
