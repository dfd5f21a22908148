//! An app whose config claims what another app already has is skipped; the node starts.

use crate::harness::{Edge, client, get_text, scratch};

fn app(dir: &std::path::Path, folder: &str, toml: &str, says: &str) {
    let d = dir.join(folder);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("edge.toml"), toml).unwrap();
    std::fs::write(
        d.join("index.js"),
        format!("export default {{ fetch() {{ return new Response({says:?}); }} }};"),
    )
    .unwrap();
}

#[tokio::test]
async fn a_duplicate_name_or_route_skips_that_app_only() {
    let apps = scratch("claims");
    app(
        &apps,
        "a-first",
        "name = \"first\"\nmain = \"index.js\"\nroutes = [\"shop.test/*\"]\n",
        "first",
    );
    // Same name as the app before it (folders load in order).
    app(
        &apps,
        "b-same-name",
        "name = \"first\"\nmain = \"index.js\"\nroutes = [\"other.test/*\"]\n",
        "impostor",
    );
    // Same route.
    app(
        &apps,
        "c-same-route",
        "name = \"third\"\nmain = \"index.js\"\nroutes = [\"shop.test/*\"]\n",
        "thief",
    );
    app(
        &apps,
        "d-fine",
        "name = \"fine\"\nmain = \"index.js\"\nroutes = [\"fine.test/*\"]\n",
        "fine",
    );
    // Before, either conflict made the whole node refuse to start.
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("shop.test")).await,
        "first"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("fine.test")).await,
        "fine"
    );
    let res = c
        .get(edge.url("/"))
        .header("host", "other.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let logs = edge.logs();
    assert!(
        logs.contains(
            "b-same-name/edge.toml: `name`: \\\"first\\\" is already the name of the app in"
        ),
        "{logs}"
    );
    assert!(
        logs.contains(
            "c-same-route/edge.toml: `routes`: shop.test/* is already routed to app \\\"first\\\""
        ),
        "{logs}"
    );
}

#[tokio::test]
async fn a_wildcard_route_cannot_take_a_host_another_app_names() {
    let apps = scratch("capture");
    app(
        &apps,
        "shop",
        "name = \"shop\"\nmain = \"index.js\"\nroutes = [\"shop.test/*\"]\n",
        "shop",
    );
    app(
        &apps,
        "grabber",
        "name = \"grabber\"\nmain = \"index.js\"\nroutes = [\"*/login*\"]\n",
        "grabber",
    );
    // (Granted by the operator: what it may still take is only hosts no app names.)
    let edge = Edge::serve(&apps, &["--allow-wildcard-routes", "grabber"]);
    let c = client();
    // Before, the longer path won whatever the host: the shop's logins reached the grabber.
    assert_eq!(
        get_text(&c, &edge.url("/login"), Some("shop.test")).await,
        "shop"
    );
    assert_eq!(
        get_text(&c, &edge.url("/login"), Some("shop.localhost")).await,
        "shop"
    );
    // A host nobody names is the wildcard's to take.
    assert_eq!(
        get_text(&c, &edge.url("/login"), Some("elsewhere.test")).await,
        "grabber"
    );
}

#[tokio::test]
async fn an_app_cannot_bind_another_apps_kv_namespace_unless_the_node_shares_it() {
    let apps = scratch("kv-claims");
    crate::harness::copy_dir(&crate::harness::fixture("kv-apps"), &apps);
    // a and b both bind "shared": before, b had full read and write on a's data by naming it.
    let edge = Edge::serve(&apps, &[]);
    let res = client()
        .get(edge.url("/"))
        .header("host", "b.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "b was served");
    assert!(
        edge.logs()
            .contains("namespace \\\"shared\\\" belongs to app \\\"a\\\""),
        "{}",
        edge.logs()
    );
    assert_ne!(
        client()
            .get(edge.url("/"))
            .header("host", "a.localhost")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// A wildcard host claims every host no app names (before, `routes = ["*/login*"]` in any
/// app's own config took `/login` on all of them): only an app the operator names may have one.
#[tokio::test]
async fn a_wildcard_route_needs_the_operators_grant() {
    let apps = scratch("wildcards");
    app(
        &apps,
        "a-catcher",
        "name = \"catcher\"\nmain = \"index.js\"\nroutes = [\"*/login*\"]\n",
        "caught",
    );
    app(
        &apps,
        "b-fine",
        "name = \"fine\"\nmain = \"index.js\"\nroutes = [\"fine.test/*\"]\n",
        "fine",
    );
    let edge = Edge::serve(&apps, &[]);
    let c = client();
    let res = c
        .get(edge.url("/login"))
        .header("host", "anything.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "an ungranted wildcard route took the request"
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), Some("fine.test")).await,
        "fine"
    );
    let logs = edge.logs();
    assert!(
        logs.contains("has a wildcard host") && logs.contains("--allow-wildcard-routes catcher"),
        "{logs}"
    );
    drop(edge);

    let edge = Edge::serve(&apps, &["--allow-wildcard-routes", "catcher"]);
    assert_eq!(
        get_text(&c, &edge.url("/login"), Some("anything.test")).await,
        "caught"
    );
}
