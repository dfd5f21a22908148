//! Namespaces between apps, and the `edge kv` CLI against running and stopped nodes.

use serde_json::{Value, json};

use super::{SHARE, cli, cli_list};
use crate::harness::{Edge, client, copy_dir, fixture, scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_reach_only_the_namespaces_they_bind() {
    let apps = scratch("kv-iso-apps");
    copy_dir(&fixture("kv-apps"), &apps);
    let edge = Edge::serve(&apps, SHARE);
    let c = client();
    let put = |host: &'static str, key: &'static str, value: &'static str| {
        let c = c.clone();
        let url = edge.url(&format!("/?key={key}"));
        async move {
            let res = c
                .put(url)
                .header("host", host)
                .body(value)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        }
    };
    let get = |host: &'static str, key: &'static str| {
        let c = c.clone();
        let url = edge.url(&format!("/?key={key}"));
        async move {
            c.get(url)
                .header("host", host)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    put("a.localhost", "k", "from a").await;
    // b binds the same id: it sees a's write at once (another isolate, strongly consistent).
    let b = get("b.localhost", "k").await;
    assert_eq!(b["value"], "from a");
    // c binds another id under the same binding name: nothing.
    let c_view = get("c.localhost", "k&list=1").await;
    assert_eq!(c_view["value"], Value::Null);
    assert_eq!(c_view["keys"], json!([]));
    assert_eq!(c_view["bindings"], json!(["STORE"]));
    put("c.localhost", "k", "from c").await;
    assert_eq!(get("a.localhost", "k").await["value"], "from a");
    assert_eq!(get("c.localhost", "k").await["value"], "from c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_works_on_running_and_stopped_nodes() {
    let apps = scratch("kv-cli-apps");
    copy_dir(&fixture("kv-apps"), &apps);
    let data = scratch("kv-cli-data");
    let dir = data.to_str().unwrap();
    let mut edge = Edge::serve_in(&apps, &data, SHARE, &[]);
    let c = client();
    let read = |edge: &Edge, key: &str| {
        let c = c.clone();
        let url = edge.url(&format!("/?key={key}"));
        async move {
            c.get(url)
                .header("host", "a.localhost")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // Running node: the CLI goes through the admin endpoint.
    let (ok, _, err) = cli(
        &[
            "put",
            "-n",
            "shared",
            "--data-dir",
            dir,
            "greeting",
            "hello",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(read(&edge, "greeting").await["value"], "hello");
    let (ok, _, err) = cli(
        &[
            "put",
            "-n",
            "shared",
            "--data-dir",
            dir,
            "piped",
            "--metadata",
            r#"{"src":"stdin"}"#,
            "--ttl",
            "3600",
        ],
        Some(b"from stdin"),
    );
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&["get", "-n", "shared", "--data-dir", dir, "piped"], None);
    assert!(ok);
    assert_eq!(out, b"from stdin");
    let (ok, out, _) = cli(&["list", "-n", "shared", "--data-dir", dir], None);
    assert!(ok);
    let keys: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1]["name"], "piped");
    assert_eq!(keys[1]["metadata"], json!({"src": "stdin"}));
    assert!(keys[1]["expiration"].as_u64().is_some());
    // Rules apply here too, with the same message.
    let (ok, _, err) = cli(
        &[
            "put",
            "-n",
            "shared",
            "--data-dir",
            dir,
            "x",
            "v",
            "--ttl",
            "5",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("Expiration TTL must be at least 60"), "{err}");
    let (ok, _, err) = cli(&["get", "-n", "shared", "--data-dir", dir, "missing"], None);
    assert!(!ok && err.contains("no key \"missing\""), "{err}");
    let (ok, _, err) = cli(
        &["delete", "-n", "shared", "--data-dir", dir, "greeting"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(read(&edge, "greeting").await["value"], Value::Null);

    // Stopped node: the CLI opens the file itself.
    assert!(edge.terminate().success());
    assert!(
        !data.join("admin.json").exists(),
        "a clean stop removes admin.json"
    );
    let file = scratch("kv-cli-value").join("value.bin");
    std::fs::write(&file, b"from a file").unwrap();
    let (ok, _, err) = cli(
        &[
            "put",
            "-n",
            "shared",
            "--data-dir",
            dir,
            "filed",
            "--path",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(cli_list(&data, "shared"), ["filed", "piped"]);

    // Restarted, the node sees what the CLI wrote while it was down.
    let edge = Edge::serve_in(&apps, &data, SHARE, &[]);
    assert_eq!(read(&edge, "filed").await["value"], "from a file");

    // A missing data dir is a clear error, not an empty store.
    let (ok, _, err) = cli(
        &["list", "-n", "shared", "--data-dir", "/nonexistent/edge"],
        None,
    );
    assert!(
        !ok && err.contains("no KV data in /nonexistent/edge"),
        "{err}"
    );
}
