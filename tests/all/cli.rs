//! The CLI's own commands: `new`, `check`, `--version`, and config errors.

use std::process::Command;

use crate::harness::{Edge, client, edge_bin, edge_command, fixture, get_text, scratch};

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
    check_ok(&app);
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
    let out = edge_command(&["check", fixture("node-basic/broken").to_str().unwrap()])
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

/// `edge check` gives a KV app an in-memory store: the app loads (before, it failed for want
/// of a store), and nothing is written next to it.
#[test]
fn check_loads_a_kv_app_in_memory() {
    let app = scratch("check-kv");
    std::fs::write(
        app.join("edge.toml"),
        "name = \"kv-check\"\nmain = \"index.js\"\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"ns\"\n",
    )
    .unwrap();
    std::fs::write(
        app.join("index.js"),
        "export default { async fetch(req, env) { await env.KV.put('k', 'v'); return new Response(await env.KV.get('k')); } };\n",
    )
    .unwrap();
    check_ok(&app);
    assert!(!app.join(".edge").exists());
}

/// A binding's section is read by its binding, with the same file, key and line in errors as
/// the rest of `edge.toml`.
#[test]
fn a_bad_binding_entry_names_file_key_and_line() {
    let app = scratch("bad-binding");
    std::fs::write(app.join("index.js"), "export default { fetch() {} };\n").unwrap();
    for (toml, expect) in [
        (
            "main = \"index.js\"\n\n[[kv_namespaces]]\nbinding = \"KV\"\nid = 7\n",
            vec!["edge.toml", "line 5", "kv_namespaces"],
        ),
        (
            "main = \"index.js\"\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"a\"\nttl = 3\n",
            vec!["edge.toml", "line 5", "unknown field `ttl`"],
        ),
        (
            "main = \"index.js\"\n[vars]\nKV = 1\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"a\"\n",
            vec!["edge.toml", "`kv_namespaces[0].binding`", "already bound"],
        ),
    ] {
        std::fs::write(app.join("edge.toml"), toml).unwrap();
        let out = check(&app);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        for part in expect {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
    }
}

/// `edge check DIR`.
fn check(dir: &std::path::Path) -> std::process::Output {
    edge_command(&["check", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

/// `edge check DIR` succeeds.
fn check_ok(dir: &std::path::Path) {
    let out = check(dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory outside the workspace and cargo's home (which the test hides).
fn outside_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `edge` copied to an edge node that has no crate sources: with the workspace and cargo's
/// registry hidden (bind-mounted over in a private mount namespace), a fresh cache, the binary
/// still builds its startup snapshot and serves — the extension scripts are in the binary.
#[tokio::test]
async fn a_relocated_binary_starts_without_the_crate_sources() {
    let can_unshare = Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_unshare {
        eprintln!("SKIPPED: needs `unshare -m` (root) to hide the sources");
        return;
    }
    let node = outside_dir("relocated");
    let bin = node.join("edge");
    std::fs::copy(edge_bin(), &bin).unwrap();
    let apps = node.join("apps");
    std::fs::create_dir_all(apps.join("hello")).unwrap();
    for file in ["edge.toml", "index.js"] {
        std::fs::copy(fixture("hello").join(file), apps.join("hello").join(file)).unwrap();
    }
    let empty = node.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
    let mut hide = vec![workspace];
    for sub in ["registry", "git"] {
        if cargo_home.join(sub).is_dir() {
            hide.push(cargo_home.join(sub));
        }
    }
    let mut script = String::from("set -e\n");
    for dir in &hide {
        script.push_str(&format!(
            "mount --bind '{}' '{}'\n",
            empty.display(),
            dir.display()
        ));
    }
    // Prove the sources are gone, then run the relocated binary.
    script.push_str(&format!(
        "test -z \"$(ls -A '{}')\"\nexec '{}' serve --apps '{}' --listen 127.0.0.1:0 --data-dir '{}' --log-format json\n",
        hide[0].display(),
        bin.display(),
        apps.display(),
        node.join("data").display()
    ));
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script])
        .env("EDGE_CACHE_DIR", node.join("cache"))
        .env("EDGE_LOG", "info");
    let edge = Edge::start_command(cmd, "serve (relocated, sources hidden)");
    let body = get_text(&client(), &edge.url("/"), Some("hello.localhost")).await;
    assert_eq!(body, "hello from /");
    assert!(
        std::fs::read_dir(node.join("cache")).unwrap().count() > 0,
        "no snapshot was cached"
    );
    drop(edge);
    let _ = std::fs::remove_dir_all(&node);
}

/// Human-readable log lines (stderr not a terminal): no colour codes, and a field the console
/// line and the isolate's span both carry (`tenant`) printed once.
#[tokio::test]
async fn pretty_log_lines_have_no_colour_off_a_terminal_and_each_field_once() {
    let dir = scratch("pretty-log");
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"pretty\"\nmain = \"index.js\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        "export default { fetch() { console.log(\"hello from the app\"); return new Response(\"ok\") } };\n",
    )
    .unwrap();
    let edge = Edge::start(&["dev", dir.to_str().unwrap(), "--port", "0"]);
    assert_eq!(get_text(&client(), &edge.url("/"), None).await, "ok");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        if let Some(line) = edge
            .logs()
            .lines()
            .find(|l| l.contains("hello from the app"))
            .map(String::from)
        {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "{}", edge.logs());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(!edge.logs().contains('\u{1b}'), "{}", edge.logs());
    assert_eq!(line.matches("tenant=").count(), 1, "{line}");
    assert!(line.contains("isolate="), "{line}");
}
