//! A node changes what it serves while it runs (`kill -HUP`): changed apps are replaced, new
//! ones start, removed ones stop, unchanged ones keep their isolates; a broken change leaves
//! the old version serving; a request in flight finishes on the version it started on.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Edge, client, get_text, scratch};

fn write_app(apps: &Path, name: &str, body: &str) {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"index.js\"\nroutes = [\"{name}.test/*\"]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), body).unwrap();
}

fn says(text: &str) -> String {
    format!("export default {{ fetch() {{ return new Response({text:?}); }} }};\n")
}

fn slow_says(text: &str) -> String {
    format!(
        "export default {{ async fetch() {{ await new Promise((r) => setTimeout(r, 1000)); return new Response({text:?}); }} }};\n"
    )
}

/// Sends SIGHUP and waits for the `n`th "apps reloaded" event.
fn hangup(edge: &Edge, n: usize) -> serde_json::Value {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &edge.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done: Vec<_> = edge
            .events()
            .into_iter()
            .filter(|e| e["message"] == "apps reloaded")
            .collect();
        if done.len() >= n {
            return done[n - 1].clone();
        }
        assert!(Instant::now() < deadline, "no reload {n}:\n{}", edge.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn status(c: &reqwest::Client, edge: &Edge, host: &str) -> u16 {
    c.get(edge.url("/"))
        .header("host", host)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_apps_without_dropping_a_request() {
    let apps = scratch("reload");
    write_app(&apps, "one", &says("one v1"));
    write_app(&apps, "two", &says("two"));
    write_app(&apps, "same", &says("same"));
    write_app(&apps, "slow", &slow_says("slow v1"));
    let edge = Edge::serve(&apps, &["--no-watch"]);
    let c = client();
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("one.test")).await,
        "one v1"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("same.test")).await,
        "same"
    );

    // A request in flight on the old version of `slow` when the node reloads.
    let in_flight = tokio::spawn({
        let (c, url) = (c.clone(), edge.url("/"));
        async move {
            c.get(url)
                .header("host", "slow.test")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_app(&apps, "one", &says("one v2"));
    write_app(&apps, "slow", &slow_says("slow v2"));
    write_app(&apps, "three", &says("three"));
    std::fs::remove_dir_all(apps.join("two")).unwrap();
    let report = tokio::task::block_in_place(|| hangup(&edge, 1));
    assert_eq!(report["added"], r#"["three"]"#, "{report}");
    assert_eq!(report["replaced"], r#"["one", "slow"]"#, "{report}");
    assert_eq!(report["removed"], r#"["two"]"#, "{report}");
    assert_eq!(report["unchanged"], 1, "{report}");

    assert_eq!(in_flight.await.unwrap(), "slow v1");
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("one.test")).await,
        "one v2"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("three.test")).await,
        "three"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("slow.test")).await,
        "slow v2"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("same.test")).await,
        "same"
    );
    assert_eq!(status(&c, &edge, "two.test").await, 404);

    // Broken changes: a syntax error, a config that no longer parses. The versions already
    // serving stay.
    std::fs::write(apps.join("one/index.js"), "export default { fetch( {\n").unwrap();
    std::fs::write(apps.join("three/edge.toml"), "name = [\n").unwrap();
    let report = tokio::task::block_in_place(|| hangup(&edge, 2));
    assert_eq!(report["failed"], r#"["one"]"#, "{report}");
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("one.test")).await,
        "one v2"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("three.test")).await,
        "three"
    );
    let logs = edge.logs();
    assert!(
        logs.contains("three/edge.toml"),
        "the config error was not logged"
    );

    // Fixed: served.
    std::fs::write(apps.join("one/index.js"), says("one v3")).unwrap();
    let report = tokio::task::block_in_place(|| hangup(&edge, 3));
    assert_eq!(report["replaced"], r#"["one"]"#, "{report}");
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("one.test")).await,
        "one v3"
    );
}

/// What an app served now claims (here, the consumer side of a queue) stays its own when a
/// reload brings an app that claims it too, even one earlier in folder order: the newcomer is
/// left out, not the app already serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_does_not_hand_an_apps_claims_to_a_newcomer() {
    let apps = scratch("reload-claims");
    let consumer = "[[queues.consumers]]\nqueue = \"orders\"\n";
    let handler = "export default { fetch() { return new Response(\"ok\"); }, queue() {} };\n";
    write_app(&apps, "m-owner", handler);
    let toml = apps.join("m-owner/edge.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}{consumer}")).unwrap();
    let edge = Edge::serve(&apps, &["--no-watch"]);
    let c = client();
    assert_eq!(status(&c, &edge, "m-owner.test").await, 200);

    write_app(&apps, "a-thief", handler);
    let toml = apps.join("a-thief/edge.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}{consumer}")).unwrap();
    let report = tokio::task::block_in_place(|| hangup(&edge, 1));
    assert_eq!(status(&c, &edge, "m-owner.test").await, 200, "{report}");
    assert_eq!(status(&c, &edge, "a-thief.test").await, 404, "{report}");
    assert!(
        edge.logs()
            .contains("already consumed by app \\\"m-owner\\\""),
        "{}",
        edge.logs()
    );
}
