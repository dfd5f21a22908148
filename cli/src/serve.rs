//! `edge serve --apps DIR`: every app folder in DIR, routed by host and path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edge_runtime::edge_binding::NodeStore;
use edge_runtime::{Node, NodeOptions};

use crate::logging::{self, LogFormat};

/// Arguments of `edge serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The directory whose subfolders (each with an edge.toml) are the apps.
    #[arg(long)]
    apps: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// Where the node keeps its state (default: ./.edge-data): KV data (kv.redb), the admin
    /// endpoint's address (admin.json) and the startup-snapshot cache.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds an isolate with nothing to do stays warm.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Blank isolates kept restored and waiting for an app, so the first request to an app
    /// does not wait for an isolate to be made (each holds about 6 MiB). 0 turns the pool off.
    #[arg(long, default_value_t = 8)]
    warm_isolates: usize,
    /// WebAssembly instances that may run at once on the node (one per wasm request in
    /// flight). Sizes the pooling allocator, which reserves address space (not memory) for
    /// each; a request past it answers `503 unavailable`.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    wasm_instances: u32,
    /// Lets the app NAME have its `[outbound] allow_private` (reach loopback and private
    /// networks, e.g. a local database proxy). Repeat for more apps. Without it, no app's own
    /// config can grant itself that.
    #[arg(long = "allow-private-network", value_name = "NAME")]
    allow_private_network: Vec<String>,
    /// Lets the app NAME have routes with a wildcard host (`*/…`, `*.example.com/…`,
    /// `*example.com/…`), which claim hosts no app names. Repeat for more apps. Any other app
    /// with such a route is skipped.
    #[arg(long = "allow-wildcard-routes", value_name = "NAME")]
    allow_wildcard_routes: Vec<String>,
    /// Lets more than one app bind the KV namespace ID (they then share its data). Repeat for
    /// more ids. Any other id belongs to the first app that binds it; another app binding it
    /// is skipped.
    #[arg(long = "share-kv", value_name = "ID")]
    share_kv: Vec<String>,
    /// On SIGTERM or Ctrl-C: stop accepting connections, then give the requests in flight up
    /// to this many seconds to finish before exiting (a second signal exits at once).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    grace_secs: u64,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
}

/// Runs `edge serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format, logging::SERVE_FILTER);
    let data_dir = args.data_dir.unwrap_or_else(|| PathBuf::from(".edge-data"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let options = NodeOptions {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        limits: args.limits.node_limits(),
        front_door: args.limits.front_door(),
        private_network: edge_runtime::AppGrant::Apps(args.allow_private_network),
        wildcard_routes: edge_runtime::AppGrant::Apps(args.allow_wildcard_routes),
        test_scheduled: false,
        enforce_limits: !args.limits.no_limits,
        expose_errors: false,
        warm_isolates: args.warm_isolates,
        wasm_instances: args.wasm_instances.max(1),
        cache_dir: Some(
            std::env::var_os("EDGE_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("cache")),
        ),
        bindings: crate::bindings::registry(
            NodeStore::Dir(data_dir.clone()),
            crate::bindings::Settings {
                kv_namespace_quota: args.limits.kv_namespace_quota(),
                queue_quota: args.limits.queue_quota(),
                shared_kv: args.share_kv,
            },
        )?,
        open_storage: true,
    };
    let (node, errors) = Node::from_apps_dir(&args.apps, options)
        .with_context(|| format!("cannot start a node for {}", args.apps.display()))?;
    for e in &errors {
        tracing::error!("app skipped: {e}");
    }
    tracing::info!(
        apps = node.tenants().len(),
        skipped = errors.len(),
        "apps loaded"
    );
    listen(
        node,
        &args.listen,
        &data_dir,
        Duration::from_secs(args.grace_secs),
    )
}

/// Binds `addr`, starts the admin endpoint (announced in `data_dir/admin.json`) if the node
/// has a binding's storage open, prints `listening on http://HOST:PORT` on stdout, and serves until killed.
pub fn listen(
    node: Node,
    addr: &str,
    data_dir: &std::path::Path,
    grace: Duration,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let node = Arc::new(node);
        let _admin = edge_runtime::admin::start(node.clone(), data_dir)
            .await
            .with_context(|| {
                format!("cannot start the admin endpoint in {}", data_dir.display())
            })?;
        #[allow(
            clippy::print_stdout,
            reason = "the readiness line is the CLI's output"
        )]
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{local}")?;
            out.flush()?;
        }
        let mut server = Box::pin(edge_runtime::server::serve(listener, node.clone()));
        let mut hangups = signal(tokio::signal::unix::SignalKind::hangup());
        loop {
            tokio::select! {
                r = &mut server => {
                    r.context("server failed")?;
                    break;
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("interrupted; shutting down");
                    break;
                }
                _ = terminated() => {
                    tracing::info!("terminated; shutting down");
                    break;
                }
                Some(()) = next(&mut hangups) => reload(&node).await,
            }
        }
        // Close the listener (no new connections); requests in flight may finish, up to the
        // grace period. A second signal stops at once.
        drop(server);
        let requests = node.requests();
        if requests.count() > 0 {
            tracing::info!(
                in_flight = requests.count(),
                grace_secs = grace.as_secs_f64(),
                "letting requests in flight finish"
            );
            tokio::select! {
                () = requests.drained() => tracing::info!("every request finished"),
                () = tokio::time::sleep(grace) => tracing::warn!(
                    in_flight = requests.count(),
                    "grace period over; stopping with requests in flight"
                ),
                _ = tokio::signal::ctrl_c() => tracing::warn!("interrupted again; stopping now"),
                _ = terminated() => tracing::warn!("terminated again; stopping now"),
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads the apps again (on SIGHUP) and logs what changed.
async fn reload(node: &Node) {
    tracing::info!("hangup: reading the apps again");
    match node.reload().await {
        Ok(report) => {
            for e in &report.errors {
                tracing::error!("{e}");
            }
            tracing::info!(
                added = ?report.added,
                replaced = ?report.replaced,
                removed = ?report.removed,
                failed = ?report.failed.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                unchanged = report.unchanged,
                "apps reloaded"
            );
        }
        Err(e) => tracing::error!("reload failed; the apps as they were keep serving: {e}"),
    }
}

/// A stream of `kind` signals, if the process can take them.
fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

/// The next signal of `stream`; never, without one.
async fn next(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGTERM (how service managers stop a node), so shutdown is clean: the admin
/// file is removed and the KV writer finishes its queue.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
