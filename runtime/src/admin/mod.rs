//! The node's loopback admin endpoint, so `edge kv` can work on a running node's data (redb
//! lets one process open the file). It listens on `127.0.0.1:0`, requires a bearer token, and
//! announces itself in `admin.json` (mode 0600) next to the KV file; the file is removed when
//! the node stops cleanly and ignored by the CLI when nothing answers at its address.
//!
//! Paths (all under `/v1`, keys and namespace ids percent-encoded):
//! - `GET    /v1/kv/{ns}/keys?prefix=&limit=&cursor=` → `{keys, list_complete, cursor?}`
//! - `GET    /v1/kv/{ns}/values/{key}` → the value; metadata and expiration in the
//!   `edge-kv-metadata` (percent-encoded JSON) and `edge-kv-expiration` headers; 404 if absent
//! - `PUT    /v1/kv/{ns}/values/{key}?expiration=&expiration_ttl=&metadata=` with the value as body
//! - `DELETE /v1/kv/{ns}/values/{key}`
//! - `POST   /v1/clock/advance?secs=N`, only when the node runs with `EDGE_KV_CLOCK=manual`

mod handler;
mod info;
mod kv;

pub use handler::list_json;
pub use info::{ADMIN_FILE, AdminInfo};
pub use kv::{EXPIRATION_HEADER, METADATA_HEADER};

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

/// Starts the admin endpoint for `node`'s KV store (if it has one) and writes `admin.json`
/// into `dir`. Must be called inside a tokio runtime.
pub async fn start(node: Arc<Node>, dir: &Path) -> std::io::Result<Option<Admin>> {
    let Some(store) = node.kv().cloned() else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let info = AdminInfo {
        url: format!("http://{}", listener.local_addr()?),
        token: info::new_token()?,
        pid: std::process::id(),
    };
    let file = dir.join(ADMIN_FILE);
    info.write(&file)?;
    let state = Arc::new(handler::AdminState {
        store,
        token: info.token.clone(),
        clock: node.options().kv.clock.clone(),
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
