//! `queues`: durable messages end to end through a JavaScript producer and consumer, edge
//! (redb, group commit) against Deno KV's queue (`deno serve --unstable-kv`: `enqueue` in one
//! atomic commit, `listenQueue`) running the same logic (`queues/edge.js`, `queues/deno.ts`).
//! workerd has no local queue to compare.
//!
//! - `throughput`: 8 client threads each `POST /send?n=100` (one `sendBatch` of 100; a 2xx
//!   means the messages are durable) for the run's seconds; messages/s is what the consumer
//!   received divided by the time from the first send until it had received everything sent,
//!   or until 10 s after the senders stopped, whichever is first (a consumer that cannot keep
//!   up is measured by what it got through). edge's consumer: `max_batch_size = 100`,
//!   `max_batch_timeout = 0`.
//! - `latency` (run first, on empty queues: a backlog left by the throughput runs would be
//!   measured instead): one message per request, one request every 10 ms; p50 and p99 of the
//!   time from the producer's `Date.now()` to the consumer's (both in the same isolate).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process::Server;
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{apps, http, stats, wrk};

/// The edge app's extra `edge.toml`: a producer and the consumer of the same queue.
const EDGE_TOML: &str = "\n[[queues.producers]]\nbinding = \"Q\"\nqueue = \"bench\"\n\n\
                         [[queues.consumers]]\nqueue = \"bench\"\nmax_batch_size = 100\n\
                         max_batch_timeout = 0\n";

/// Client threads sending batches in the throughput variant.
const SENDERS: usize = 8;
/// Messages per send.
const PER_SEND: u64 = 100;
/// How long the consumer gets to catch up after the senders stop.
const DRAIN: Duration = Duration::from_secs(10);
/// Messages in the latency variant.
const LATENCY_MESSAGES: usize = 200;

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let q_dir = crate::suite_dir().join("queues");
    let (edges, deno) = apps::edge_nodes_and_deno_kv(settings, dir, &q_dir, EDGE_TOML);
    let mut named: Vec<(&'static str, &Server)> = edges.iter().map(|(n, s)| (*n, s)).collect();
    named.push(("deno", &deno));

    println!("  latency: {LATENCY_MESSAGES} single sends, 10 ms apart");
    for (name, server) in &named {
        let lat =
            latency(server).unwrap_or_else(|e| panic!("{name} latency: {e}\n{}", server.log()));
        for (metric, p) in [("p50_ms", 50.0), ("p99_ms", 99.0)] {
            report.add(Sample {
                scenario: "queues",
                variant: "latency".into(),
                system: name,
                metric,
                unit: "ms",
                runs: vec![stats::percentile(&lat, p)],
            });
        }
    }
    println!(
        "  throughput: {SENDERS} senders × sendBatch({PER_SEND}), {} s, {} rounds",
        settings.seconds, settings.rounds
    );
    let mut rates: Vec<(&'static str, Vec<f64>)> =
        named.iter().map(|(n, _)| (*n, Vec::new())).collect();
    for _ in 0..settings.rounds {
        for (i, (name, server)) in named.iter().enumerate() {
            let rate = throughput(server, Duration::from_secs(u64::from(settings.seconds)))
                .unwrap_or_else(|e| panic!("{name} throughput: {e}\n{}", server.log()));
            rates[i].1.push(rate);
        }
    }
    for (system, runs) in rates {
        report.add(Sample {
            scenario: "queues",
            variant: "throughput".into(),
            system,
            metric: "msgs_per_s",
            unit: "msg/s",
            runs,
        });
    }
}

/// What the consumer has received so far, and the latencies it kept since the last call.
fn stats_of(server: &Server) -> Result<(u64, Vec<f64>), String> {
    let res =
        http::request(server.port, wrk::HOST, "GET", "/stats", b"").map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&res.body).map_err(|e| format!("{e}: {}", res.body))?;
    let received = v["received"].as_u64().unwrap_or(0);
    let lat = v["latencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    Ok((received, lat))
}

fn reset(server: &Server) -> Result<(), String> {
    http::request(server.port, wrk::HOST, "POST", "/reset", b"").map_err(|e| e.to_string())?;
    Ok(())
}

/// Messages per second end to end: sent for `seconds`, until all of it was received.
fn throughput(server: &Server, seconds: Duration) -> Result<f64, String> {
    reset(server)?;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let path = format!("/send?n={PER_SEND}");
    let threads: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (sent, stop, path, port) = (sent.clone(), stop.clone(), path.clone(), server.port);
            std::thread::spawn(move || -> Result<(), String> {
                while !stop.load(Ordering::Relaxed) {
                    let res = http::request(port, wrk::HOST, "POST", &path, b"")
                        .map_err(|e| e.to_string())?;
                    if res.status != 200 {
                        return Err(format!("send answered {}: {}", res.status, res.body));
                    }
                    sent.fetch_add(PER_SEND, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(seconds);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "a sender panicked".to_string())??;
    }
    let sent = sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + DRAIN;
    loop {
        let (received, _) = stats_of(server)?;
        if received >= sent || Instant::now() > deadline {
            if received < sent {
                println!(
                    "    {received} of {sent} messages received {DRAIN:?} after the senders stopped"
                );
            }
            return Ok(received as f64 / start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Send→handler latencies (ms) of single messages sent 10 ms apart.
fn latency(server: &Server) -> Result<Vec<f64>, String> {
    reset(server)?;
    for _ in 0..LATENCY_MESSAGES {
        let res = http::request(server.port, wrk::HOST, "POST", "/send?n=1", b"")
            .map_err(|e| e.to_string())?;
        if res.status != 200 {
            return Err(format!("send answered {}: {}", res.status, res.body));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all = Vec::new();
    let mut received = 0;
    while received < LATENCY_MESSAGES as u64 {
        let (r, lat) = stats_of(server)?;
        received = r;
        all.extend(lat);
        if Instant::now() > deadline {
            // Still measured: the messages not received count as 30 s (at least that late).
            println!("    {received} of {LATENCY_MESSAGES} received 30 s after the last send");
            let missing = LATENCY_MESSAGES.saturating_sub(all.len());
            all.extend(std::iter::repeat_n(30_000.0, missing));
            return Ok(all);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, lat) = stats_of(server)?;
    all.extend(lat);
    Ok(all)
}
