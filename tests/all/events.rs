//! Events other than requests go through the same tenant, isolate and limits: a `scheduled`
//! handler, run by hand with `edge dev --test-scheduled` (`/__scheduled?cron=…`, as wrangler).

use crate::harness::{Edge, client, get_text, scratch};

fn dev(app: &str) -> Edge {
    dev_with(app, &["--test-scheduled"])
}

/// `edge dev` on fixture `app`, its state in a scratch folder.
fn dev_with(app: &str, extra: &[&str]) -> Edge {
    let state = scratch("events-state");
    let mut args = vec!["--persist-to", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    Edge::dev_with(app, &args)
}

#[tokio::test]
async fn the_scheduled_handler_runs_on_test_scheduled() {
    let edge = dev("scheduled");
    let c = client();
    assert_eq!(get_text(&c, &edge.url("/"), None).await, "never");
    let ran = get_text(
        &c,
        &edge.url("/__scheduled?cron=*/5+*+*+*+*&time=1700000000000"),
        None,
    )
    .await;
    assert_eq!(ran, "Ran scheduled event");
    assert_eq!(
        get_text(&c, &edge.url("/"), None).await,
        "scheduled */5 * * * * 1700000000000"
    );
    // Newer wrangler's path does the same, answering as wrangler does.
    let res = c
        .get(edge.url("/cdn-cgi/handler/scheduled?cron=0+9+*+*+MON&time=1700000060000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain;charset=UTF-8");
    let ran = get_text(
        &c,
        &edge.url("/cdn-cgi/handler/scheduled?cron=0+9+*+*+MON&time=1700000060000"),
        None,
    )
    .await;
    assert_eq!(ran, "Ran scheduled event");
    assert_eq!(
        get_text(&c, &edge.url("/"), None).await,
        "scheduled 0 9 * * MON 1700000060000"
    );
    // A handler that throws: answered and logged as a request's would be.
    assert_eq!(
        failure(&c, &edge, "/__scheduled?cron=fail").await,
        (500, "script-error".to_string())
    );
    let event = edge.wait_for_event(
        "scheduled failed on purpose",
        std::time::Duration::from_secs(5),
    );
    assert_eq!(event["tenant"], "scheduled", "{event}");
    // The app's limits hold for events as for requests.
    assert_eq!(
        failure(&c, &edge, "/__scheduled?cron=spin").await,
        (503, "cpu-limit".to_string())
    );
    assert_eq!(
        get_text(&c, &edge.url("/"), None).await,
        "scheduled 0 9 * * MON 1700000060000"
    );
}

#[tokio::test]
async fn an_app_with_only_a_scheduled_handler_loads() {
    let edge = dev("scheduled-only");
    let c = client();
    assert_eq!(
        get_text(&c, &edge.url("/__scheduled"), None).await,
        "Ran scheduled event"
    );
    assert_eq!(
        failure(&c, &edge, "/").await,
        (500, "script-error".to_string())
    );
    edge.wait_for_event(
        "no fetch() method to answer a request",
        std::time::Duration::from_secs(5),
    );
}

#[tokio::test]
async fn without_the_flag_the_path_is_the_apps() {
    let edge = dev_with("scheduled", &[]);
    // The app's own fetch answers (its last run: never).
    assert_eq!(
        get_text(&client(), &edge.url("/__scheduled"), None).await,
        "never"
    );
}

/// The status and `edge-error` of a request that fails.
async fn failure(c: &reqwest::Client, edge: &Edge, path: &str) -> (u16, String) {
    let res = c.get(edge.url(path)).send().await.unwrap();
    let code = res
        .headers()
        .get("edge-error")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (res.status().as_u16(), code)
}
