//! The node's admin endpoint, on a listener of its own (loopback by default): the CLI (`edge
//! kv`, `edge queue`, `edge trigger`) works on a running node's data through it (redb lets one
//! process open a file), operators list the apps with their versions, errors and usage
//! (`GET /v1/apps`), and Prometheus scrapes `GET /metrics`. Every request needs the bearer
//! token (the operator's, from a file or the environment, or a random one); the endpoint
//! announces itself in `admin.json` (mode 0600) in the data directory, which is removed when
//! the node stops cleanly and ignored by the CLI when nothing answers at its address.
//!
//! A connection from the node's own process (an app's outbound `fetch` that the operator let
//! reach loopback) is closed before anything is read, so no app can reach the endpoint.
//!
//! Paths under `/v1` other than `/v1/apps` belong to the node's bindings (the KV ones are
//! listed in `edge_kv::admin`).

mod apps;
mod handler;
mod info;
mod metrics;
mod peer;

pub use info::{ADMIN_FILE, AdminInfo};

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::node::Node;

/// A running admin endpoint; removes its `admin.json` when dropped.
pub struct Admin {
    file: PathBuf,
    /// Where it listens.
    pub info: AdminInfo,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Where the admin endpoint listens and what token it takes.
#[derive(Clone, Debug)]
pub struct AdminOptions {
    /// The address to listen on (`127.0.0.1:0` by default: loopback, any free port).
    pub listen: std::net::SocketAddr,
    /// The bearer token every request must carry; a random one if `None`.
    pub token: Option<String>,
    /// Start even if no binding's storage is open (a node with nothing the CLI could reach
    /// still has apps and metrics to show).
    pub always: bool,
}

impl Default for AdminOptions {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            always: false,
        }
    }
}

/// Starts the admin endpoint for `node` (unless no binding has its storage open and
/// `options.always` is off) and writes `admin.json` into `dir`. Must be called inside a tokio
/// runtime.
pub async fn start(
    node: Arc<Node>,
    dir: &Path,
    options: &AdminOptions,
) -> std::io::Result<Option<Admin>> {
    if !options.always && !node.bindings().any_open() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let token = match &options.token {
        Some(token) => token.clone(),
        None => info::new_token()?,
    };
    let info = AdminInfo {
        url: format!("http://{}", listener.local_addr()?),
        token,
        pid: std::process::id(),
    };
    let file = dir.join(ADMIN_FILE);
    info.write(&file)?;
    let state = Arc::new(handler::AdminState {
        node,
        token: info.token.clone(),
    });
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                // An app's own outbound fetch (one allowed to reach loopback) never gets in.
                if let Ok(local) = stream.local_addr()
                    && tokio::task::spawn_blocking(move || peer::from_this_process(peer, local))
                        .await
                        .unwrap_or(true)
                {
                    tracing::warn!(%peer, "refused a connection to the admin endpoint from the node's own process (an app's outbound fetch)");
                    return;
                }
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handler::handle(&state, req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Some(Admin { file, info }))
}
