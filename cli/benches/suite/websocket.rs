//! `websocket`: echo over WebSockets. The same Worker (`websocket/worker.js`: a
//! `WebSocketPair`, every message sent back) on each edge build and on workerd, and the same
//! echo with `Deno.upgradeWebSocket` under `deno serve` (`websocket/deno.js`). The client is
//! in this process (tokio-tungstenite on one thread): `connections` sockets, each sending a
//! 64-byte text message and waiting for its echo, again and again for `seconds`; measured are
//! echoes per second over all sockets and the round trip's p50 and p99. Rounds interleave the
//! systems, as the wrk scenarios do.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::process::Server;
use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{apps, peers, process, stats, wrk};

/// The message each round trip carries.
const MESSAGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One run against one system.
struct Run {
    echoes_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let source = crate::suite_dir().join("websocket");
    let worker = std::fs::read_to_string(source.join("worker.js")).expect("read worker.js");
    let apps_dir = dir.join("edge-apps");
    apps::edge_app(&apps_dir, apps::APP, &worker, "");
    let mut servers: Vec<(&'static str, Server)> = settings
        .edges
        .iter()
        .map(|edge| {
            let data = dir.join(format!("{}-data", edge.name));
            let server = process::edge(*edge, &apps_dir, &data, &apps::edge_cache(dir));
            (edge.name, server)
        })
        .collect();
    let deno_dir = dir.join("deno");
    std::fs::create_dir_all(&deno_dir).expect("create the deno folder");
    std::fs::copy(source.join("deno.js"), deno_dir.join("main.js")).expect("copy deno.js");
    let deno_cache = deno_dir.join("cache");
    let env = apps::deno_env(&deno_cache);
    servers.push((
        "deno",
        process::deno(&peers::deno(), &deno_dir.join("main.js"), &[], &env),
    ));
    let workerd_dir = dir.join("workerd");
    std::fs::create_dir_all(&workerd_dir).expect("create the workerd folder");
    std::fs::write(workerd_dir.join("worker.js"), &worker).expect("write workerd's worker.js");
    let config = apps::workerd_config(
        &workerd_dir,
        &[apps::Worker {
            name: "main".into(),
            module: "worker.js".into(),
            bindings: vec![],
        }],
    );
    servers.push(("workerd", process::workerd(&peers::workerd(), &config)));
    for (_, server) in &mut servers {
        server.wait_up(wrk::HOST);
    }
    let seconds = Duration::from_secs(u64::from(settings.seconds));
    println!(
        "  echo: {} sockets, {} s",
        settings.connections, settings.seconds
    );
    let mut runs: Vec<Vec<Run>> = servers.iter().map(|_| Vec::new()).collect();
    for _ in 0..settings.rounds {
        for (i, (name, server)) in servers.iter().enumerate() {
            let run = echo(server.port, settings.connections as usize, seconds)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.log()));
            println!(
                "    {name:<13} {:>10.0} echoes/s  p50 {:.2} ms  p99 {:.2} ms",
                run.echoes_per_s, run.p50_ms, run.p99_ms
            );
            runs[i].push(run);
        }
    }
    for ((system, _), runs) in servers.iter().zip(runs) {
        let sample = |metric, unit, f: &dyn Fn(&Run) -> f64| Sample {
            scenario: "websocket",
            variant: "echo".to_string(),
            system,
            metric,
            unit,
            runs: runs.iter().map(f).collect(),
        };
        report.add(sample("ops_per_s", "echoes/s", &|r| r.echoes_per_s));
        report.add(sample("p50_ms", "ms", &|r| r.p50_ms));
        report.add(sample("p99_ms", "ms", &|r| r.p99_ms));
    }
}

/// `sockets` clients echoing for `length` against the server on `port`.
fn echo(port: u16, sockets: usize, length: Duration) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut clients = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            let mut request = format!("ws://127.0.0.1:{port}/")
                .into_client_request()
                .map_err(|e| e.to_string())?;
            request
                .headers_mut()
                .insert("host", wrk::HOST.parse().map_err(|_| "bad host")?);
            let (ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            clients.push(ws);
        }
        let started = Instant::now();
        let end = started + length;
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    let mut rtts = Vec::new();
                    while Instant::now() < end {
                        let sent = Instant::now();
                        if ws.send(Message::text(MESSAGE)).await.is_err() {
                            return Err("send failed".to_string());
                        }
                        loop {
                            match ws.next().await {
                                Some(Ok(Message::Text(t))) if t.as_str() == MESSAGE => break,
                                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                                other => return Err(format!("no echo: {other:?}")),
                            }
                        }
                        rtts.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    let _ = ws.close(None).await;
                    Ok(rtts)
                })
            })
            .collect();
        let mut rtts = Vec::new();
        for task in tasks {
            rtts.extend(task.await.map_err(|e| e.to_string())??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        if rtts.is_empty() {
            return Err("no echo came back".into());
        }
        Ok(Run {
            echoes_per_s: rtts.len() as f64 / elapsed,
            p50_ms: stats::percentile(&rtts, 50.0),
            p99_ms: stats::percentile(&rtts, 99.0),
        })
    })
}
