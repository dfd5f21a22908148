//! Events other than requests go through the same tenant, isolate and limits: a `scheduled`
//! handler, run by hand with `edge dev --test-scheduled` (`/__scheduled?cron=…`, as wrangler).

use crate::harness::{Edge, client, fixture, get_text, scratch};

fn dev(app: &str) -> Edge {
    let state = scratch("events-state");
    Edge::start(&[
        "dev",
        fixture(app).to_str().unwrap(),
        "--port",
        "0",
        "--log-format",
        "json",
        "--persist-to",
        state.to_str().unwrap(),
        "--test-scheduled",
    ])
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
    // A handler that throws: answered and logged as a request's would be.
    let res = c
        .get(edge.url("/__scheduled?cron=fail"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["edge-error"], "script-error");
    let event = edge.wait_for_event(
        "scheduled failed on purpose",
        std::time::Duration::from_secs(5),
    );
    assert_eq!(event["tenant"], "scheduled", "{event}");
    // The app's limits hold for events as for requests.
    let res = c
        .get(edge.url("/__scheduled?cron=spin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["edge-error"], "cpu-limit");
    assert_eq!(
        get_text(&c, &edge.url("/"), None).await,
        "scheduled */5 * * * * 1700000000000"
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
    let res = c.get(edge.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["edge-error"], "script-error");
    edge.wait_for_event(
        "no fetch() method to answer a request",
        std::time::Duration::from_secs(5),
    );
}

#[tokio::test]
async fn without_the_flag_the_path_is_the_apps() {
    let state = scratch("events-state");
    let edge = Edge::start(&[
        "dev",
        fixture("scheduled").to_str().unwrap(),
        "--port",
        "0",
        "--log-format",
        "json",
        "--persist-to",
        state.to_str().unwrap(),
    ]);
    // The app's own fetch answers (its last run: never).
    assert_eq!(
        get_text(&client(), &edge.url("/__scheduled"), None).await,
        "never"
    );
}
