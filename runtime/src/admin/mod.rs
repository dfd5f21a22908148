//! The node's loopback admin endpoint, so the CLI (`edge kv`, …) can work on a running node's
//! data (redb lets one process open a file). It listens on `127.0.0.1:0`, requires a bearer
//! token, and announces itself in `admin.json` (mode 0600) in the data directory; the file is
//! removed when the node stops cleanly and ignored by the CLI when nothing answers at its
//! address.
//!
//! Every path is under `/v1`; the node's bindings answer their own (the KV ones are listed in
//! `edge_kv::admin`).

mod handler;
mod info;

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

/// Starts the admin endpoint for `node`'s bindings (if any has its storage open) and writes
/// `admin.json` into `dir`. Must be called inside a tokio runtime.
pub async fn start(node: Arc<Node>, dir: &Path) -> std::io::Result<Option<Admin>> {
    if !node.bindings().any_open() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let info = AdminInfo {
        url: format!("http://{}", listener.local_addr()?),
        token: info::new_token()?,
        pid: std::process::id(),
    };
    let file = dir.join(ADMIN_FILE);
    info.write(&file)?;
    let state = Arc::new(handler::AdminState {
        bindings: node.bindings().clone(),
        token: info.token.clone(),
    });
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
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
