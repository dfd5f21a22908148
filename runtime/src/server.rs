//! The HTTP front door: accepts connections, routes each request to its tenant's isolate and
//! sends back what the isolate answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::body::ResponseBody;
use crate::error::{ERROR_HEADER, ErrorCode, InvokeError};
use crate::isolate::{Invocation, InvocationBody};

/// Request bodies whose declared length is at most this are received by the front door and
/// given to the script whole; longer or unsized ones stream.
const SMALL_BODY_BYTES: u64 = 64 << 10;
use crate::node::Node;

/// Serves `node` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, node: Arc<Node>) -> std::io::Result<()> {
    let ids = Arc::new(RequestIds::new());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let node = node.clone();
                let id = ids.next();
                async move { Ok::<_, Infallible>(handle(&node, req, id, peer).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// The `tracing` target of the line logged per request (and of the request's span). A filter
/// can turn it off where formatting and writing a line per request costs too much: on the
/// hello-world path it is about a fifth of edge's CPU per request.
pub const ACCESS_LOG: &str = "edge::access";

/// Request ids: unique within a process, distinct across restarts.
struct RequestIds {
    boot: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self {
            boot: RandomState::new().hash_one(std::process::id()) as u32,
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> Arc<str> {
        format!(
            "{:08x}{:08x}",
            self.boot,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
        .into()
    }
}

async fn handle(
    node: &Node,
    req: Request<Incoming>,
    request_id: Arc<str>,
    _peer: SocketAddr,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some(tenant) = node.route(&host, &path) else {
        tracing::info!(target: ACCESS_LOG, request_id = &*request_id, %method, path, host, status = 404, "no route");
        return error_response(
            &request_id,
            &InvokeError::new(
                ErrorCode::NoRoute,
                format!("no app is routed for host {host:?} and path {path:?}"),
            ),
        );
    };
    let span = tracing::info_span!(
        target: ACCESS_LOG,
        "request",
        tenant = tenant.name(),
        request_id = &*request_id,
        %method,
        path,
    );
    async move {
        let response = match invoke(tenant, req, &host, request_id.clone()).await {
            Ok(res) => res,
            Err(e) => error_response(&request_id, &e),
        };
        tracing::info!(
            target: ACCESS_LOG,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "served"
        );
        response
    }
    .instrument(span)
    .await
}

async fn invoke(
    tenant: &crate::tenant::Tenant,
    req: Request<Incoming>,
    host: &str,
    request_id: Arc<str>,
) -> Result<Response<ResponseBody>, InvokeError> {
    let (parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if host.is_empty() {
        return Err(InvokeError::new(
            ErrorCode::BadRequest,
            "the request has no Host header",
        ));
    }
    let url = format!("http://{host}{path_and_query}");
    let headers = crate::isolate::header_block::join(
        parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
    );
    let body = if body.is_end_stream() {
        InvocationBody::Empty
    } else if body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= SMALL_BODY_BYTES)
    {
        // Declared small: receive it here, off the isolate's thread, and hand it over whole.
        match body.collect().await {
            Ok(collected) => InvocationBody::Full(collected.to_bytes()),
            Err(e) => {
                return Err(InvokeError::new(
                    ErrorCode::BadRequest,
                    format!("the request body could not be read: {e}"),
                ));
            }
        }
    } else {
        InvocationBody::Stream(body.map_err(|e| e.into()).boxed())
    };
    let (reply, rx) = oneshot::channel();
    tenant.invoke(Invocation {
        request_id,
        method: parts.method.as_str().to_string(),
        url,
        headers,
        body,
        reply,
    });
    match rx.await {
        Ok(reply) => reply,
        Err(_) => Err(InvokeError::new(
            ErrorCode::Unavailable,
            "the app's isolate stopped before answering",
        )),
    }
}

/// A response the runtime itself generates: JSON body and an `edge-error` header.
pub fn error_response(request_id: &str, error: &InvokeError) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "error": error.code.as_str(),
        "message": error.message,
        "request_id": request_id,
    });
    let mut res = Response::new(ResponseBody::from(Bytes::from(body.to_string())));
    *res.status_mut() = error.code.status();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ERROR_HEADER, HeaderValue::from_static(error.code.as_str()));
    res
}
