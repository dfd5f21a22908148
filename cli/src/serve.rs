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
    /// The directory whose subfolders (each with an edge.toml or a wrangler config) are the apps.
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
    /// Lets the app NAME have `compatibility_flags = ["nodejs_compat"]` (Node.js modules, from
    /// Deno's implementation, whose ops are not all checked against hostile input yet). Repeat
    /// for more apps. Without it, the app's imports of node:* fail.
    #[arg(long = "allow-nodejs-compat", value_name = "NAME")]
    allow_nodejs_compat: Vec<String>,
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
    /// Also serve HTTPS (HTTP/2 and HTTP/1.1) on this address, with the certificates of
    /// --tls-certs.
    #[arg(long, value_name = "ADDR", requires = "tls_certs")]
    tls_listen: Option<String>,
    /// The TLS certificates: one folder per certificate holding fullchain.pem and
    /// privkey.pem (certbot's live/ layout), chosen by SNI against each certificate's names
    /// and read again when the files change.
    #[arg(long, value_name = "DIR", requires = "tls_listen")]
    tls_certs: Option<PathBuf>,
    /// Address of the admin endpoint (apps, usage, `/metrics`, the CLI's KV and queue
    /// commands). Loopback by default; port 0 picks a free one (announced in admin.json).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    admin_listen: std::net::SocketAddr,
    /// A file holding the admin endpoint's bearer token (surrounding whitespace ignored).
    /// Without it or EDGE_ADMIN_TOKEN, a random token is made at each start and written to
    /// admin.json (mode 0600) for the CLI.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Do not watch the apps directory: reload only on SIGHUP. By default a changed app is
    /// reloaded once its files settle (the old version serves until the new one has loaded).
    #[arg(long)]
    no_watch: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
    #[command(flatten)]
    cf: crate::cf::CfArgs,
}

/// How [`listen`] runs a node.
pub struct Listen<'a> {
    /// `HOST:PORT`.
    pub addr: &'a str,
    /// Where the admin endpoint announces itself.
    pub data_dir: &'a std::path::Path,
    /// How long requests in flight may take to finish once asked to stop.
    pub grace: Duration,
    /// Reload the node when its apps' files change.
    pub watch: bool,
    /// Printed on stdout before the `listening on` line (`edge dev`'s banner).
    pub banner: String,
    /// Where the admin endpoint listens and its token.
    pub admin: edge_runtime::admin::AdminOptions,
    /// An HTTPS listener's address and certificates directory.
    pub tls: Option<(String, PathBuf)>,
}

/// The admin token from `--admin-token-file`, else `EDGE_ADMIN_TOKEN`, else none (a random
/// one is made).
fn admin_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let token = match file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the admin token file {}", file.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("EDGE_ADMIN_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    };
    match token {
        Some(t) if t.len() < 16 => {
            anyhow::bail!(
                "the admin token must be at least 16 characters (it guards every app's data)"
            )
        }
        other => Ok(other),
    }
}

/// Runs `edge serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format, logging::SERVE_FILTER);
    let data_dir = args.data_dir.unwrap_or_else(|| PathBuf::from(".edge-data"));
    let admin = edge_runtime::admin::AdminOptions {
        listen: args.admin_listen,
        token: admin_token(args.admin_token_file.as_deref())?,
        always: true,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let options = NodeOptions {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        limits: args.limits.node_limits(),
        front_door: args.limits.front_door(),
        private_network: edge_runtime::AppGrant::Apps(args.allow_private_network),
        nodejs_compat: edge_runtime::AppGrant::Apps(args.allow_nodejs_compat),
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
                cache: args.limits.cache_bounds(),
                shared_kv: args.share_kv,
            },
        )?,
        open_storage: true,
        vars: Vec::new(),
        // Each app's top level: a node serves what its apps' folders say.
        env: None,
        cf: args.cf.config()?,
        local_vars: None,
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
        Listen {
            addr: &args.listen,
            data_dir: &data_dir,
            grace: Duration::from_secs(args.grace_secs),
            watch: !args.no_watch,
            banner: String::new(),
            admin,
            tls: args.tls_listen.zip(args.tls_certs),
        },
    )
}

/// Binds `addr`, starts the admin endpoint (announced in `data_dir/admin.json`) if the node
/// has a binding's storage open, starts watching the apps (`watch`), prints the banner and
/// `listening on http://HOST:PORT` on stdout, and serves until stopped.
pub fn listen(node: Node, how: Listen<'_>) -> anyhow::Result<ExitCode> {
    let Listen {
        addr,
        data_dir,
        grace,
        watch,
        banner,
        admin,
        tls,
    } = how;
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
        let _admin = edge_runtime::admin::start(node.clone(), data_dir, &admin)
            .await
            .with_context(|| {
                format!("cannot start the admin endpoint in {}", data_dir.display())
            })?;
        let (https, _cert_watcher) = match tls {
            Some((tls_addr, dir)) => {
                let certs = edge_runtime::server::tls::TlsCerts::load(&dir)?;
                let acceptor = certs.acceptor()?;
                let tls_listener = tokio::net::TcpListener::bind(&tls_addr)
                    .await
                    .with_context(|| format!("cannot listen on {tls_addr}"))?;
                let https = tls_listener.local_addr()?;
                let cert_watcher = certs.watch().with_context(|| {
                    format!("cannot watch {} for certificate renewals", dir.display())
                })?;
                tracing::info!(certificates = certs.len(), %https, "serving HTTPS");
                tokio::spawn(edge_runtime::server::tls::serve(
                    tls_listener,
                    node.clone(),
                    acceptor,
                ));
                (Some(https), Some(cert_watcher))
            }
            None => (None, None),
        };
        let watcher = if watch {
            Some(node.watch(|r| log_reload(&r.result, Some(r.took)))?)
        } else {
            None
        };
        #[allow(
            clippy::print_stdout,
            reason = "the readiness line is the CLI's output"
        )]
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(banner.as_bytes())?;
            if let Some(https) = https {
                writeln!(out, "listening on https://{https}")?;
            }
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
        // Close the listener (no new connections) and stop the triggers (no new cron runs or
        // queue batches); requests in flight, batches in flight and `waitUntil` work may
        // finish, up to the grace period. A second signal stops at once.
        drop(server);
        drop(watcher);
        node.stop_triggers();
        let deadline = tokio::time::Instant::now() + grace;
        let requests = node.requests();
        if requests.count() > 0 {
            tracing::info!(
                in_flight = requests.count(),
                grace_secs = grace.as_secs_f64(),
                "letting requests in flight finish"
            );
        }
        let finished = tokio::select! {
            () = async {
                requests.drained().await;
                // Every isolate finishes its invocations (queue batches included) and its
                // `waitUntil` work, then stops.
                node.retire_all();
                node.isolates().drained().await;
            } => true,
            () = tokio::time::sleep_until(deadline) => false,
            _ = tokio::signal::ctrl_c() => {
                tracing::warn!("interrupted again; stopping now");
                return Ok(ExitCode::SUCCESS);
            }
            _ = terminated() => {
                tracing::warn!("terminated again; stopping now");
                return Ok(ExitCode::SUCCESS);
            }
        };
        if finished {
            tracing::info!("every request, batch and waitUntil task finished; stopped");
        } else {
            tracing::warn!(
                requests = requests.count(),
                isolates = node.isolates().count(),
                "grace period over; stopping with work in flight"
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads the apps again (on SIGHUP) and logs what changed.
async fn reload(node: &Node) {
    tracing::info!("hangup: reading the apps again");
    let started = std::time::Instant::now();
    let result = node.reload().await;
    log_reload(&result, Some(started.elapsed()));
}

/// Logs what a reload changed (one `apps reloaded` line, with how long it took), or why it
/// could not. Why a new version failed to load was logged as it failed.
fn log_reload(
    result: &Result<edge_runtime::Reloaded, edge_runtime::NodeError>,
    took: Option<Duration>,
) {
    match result {
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
                took_ms = took.map(|t| t.as_secs_f64() * 1000.0),
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
