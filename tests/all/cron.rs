//! Cron triggers (`[triggers] crons`) through the real binary: slots fire on schedule, each
//! at most once even across `kill -9`, slots missed while the node was down fire once at
//! start-up, `edge trigger cron` runs a handler by hand, and a bad expression is a config
//! error that names it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Edge, edge_command, scratch};

/// An apps folder with one app, `ticker`, whose `scheduled` handler logs each run.
fn ticker(crons: &str) -> std::path::PathBuf {
    let apps = scratch("cron-apps");
    let dir = apps.join("ticker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!(
            "name = \"ticker\"\nmain = \"index.js\"\nroutes = [\"ticker.test/*\"]\n\n[triggers]\ncrons = {crons}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        "export default {\n  fetch() { return new Response(\"ok\"); },\n  scheduled(controller) {\n    console.log(`cron-fired ${controller.cron} ${controller.scheduledTime}`);\n  },\n};\n",
    )
    .unwrap();
    apps
}

/// The (cron, scheduled time) of each run the node has logged.
fn fires(edge: &Edge) -> Vec<(String, i64)> {
    edge.events()
        .iter()
        .filter_map(|e| {
            e["message"]
                .as_str()?
                .strip_prefix("cron-fired ")
                .map(str::to_string)
        })
        .map(|line| {
            let (cron, time) = line.rsplit_once(' ').unwrap();
            (cron.to_string(), time.parse().unwrap())
        })
        .collect()
}

/// Waits until the node has logged at least `n` runs.
fn wait_fires(edge: &Edge, n: usize) -> Vec<(String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = fires(edge);
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs, not {n}: {}",
            seen.len(),
            edge.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slots_fire_once_each_across_kill_9_and_missed_ones_catch_up_once() {
    // Every second (the optional leading seconds field), so the test takes seconds.
    let apps = ticker("[\"* * * * * *\"]");
    let data = scratch("cron-data");
    let mut edge = Edge::serve_in(&apps, &data, &[], &[]);
    let first = wait_fires(&edge, 3);
    for (cron, time) in &first {
        assert_eq!(cron, "* * * * * *");
        assert_eq!(time % 1000, 0, "a slot is a whole second: {time}");
    }
    edge.kill9();
    let first = fires(&edge);
    let last_before = first.iter().map(|f| f.1).max().unwrap();

    // Down for three seconds: two or three slots pass unfired.
    std::thread::sleep(Duration::from_secs(3));
    let edge = Edge::serve_in(&apps, &data, &[], &[]);
    let catch_up = edge.wait_for_event("catching up a slot", Duration::from_secs(10));
    let second = wait_fires(&edge, 3);

    let mut all: Vec<i64> = first.iter().chain(&second).map(|f| f.1).collect();
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        count,
        "a slot fired twice: {first:?} then {second:?}"
    );
    // The missed slots fired once between them: the run after the restart is the latest
    // missed slot, at least two seconds after the last one before the kill.
    let caught = second[0].1;
    assert!(caught - last_before >= 2000, "{last_before} then {caught}");
    assert!(catch_up["slot"].is_string(), "{catch_up}");
    let catch_ups = edge
        .events()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("catching up"))
        })
        .count();
    assert_eq!(catch_ups, 1);
}

#[test]
fn edge_trigger_cron_runs_the_handler_on_a_running_node() {
    // Once a year: never by itself during the test.
    let apps = ticker("[\"0 0 1 1 *\"]");
    let data = scratch("cron-trigger-data");
    let edge = Edge::serve_in(&apps, &data, &[], &[]);
    let out = trigger(&data, &["ticker"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = trigger(&data, &["ticker", "--cron", "*/5 * * * *"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = wait_fires(&edge, 2);
    assert_eq!(runs[0].0, "0 0 1 1 *");
    assert_eq!(runs[1].0, "*/5 * * * *");
    let out = trigger(&data, &["nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-app"));
}

fn trigger(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["trigger", "cron"];
    all.extend_from_slice(args);
    all.extend(["--data-dir", data.to_str().unwrap()]);
    edge_command(&all).output().unwrap()
}

#[test]
fn a_bad_cron_is_a_config_error_naming_it() {
    let apps = ticker("[\"*/5 * * * *\", \"0 25 * * *\"]");
    let out = edge_command(&["check", apps.join("ticker").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edge.toml"), "{err}");
    assert!(
        err.contains("`triggers.crons[1]`") && err.contains("0 25 * * *"),
        "{err}"
    );
}
