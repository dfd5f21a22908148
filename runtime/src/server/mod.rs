//! The HTTP front door: accepts connections, routes each request to its tenant's isolate and
//! sends back what the isolate answers.
//!
//! A new connection's first request head is read here ([`first_request`]) to see which tenant
//! it is for; the connection is then handed to that tenant's isolate thread
//! ([`crate::tenant::Tenant::adopt`]), which serves it beside the isolate, so its requests reach
//! the isolate and their responses leave without crossing threads. Connections that do not say
//! (HTTP/2, malformed heads), that are for no tenant or for one that cannot take them are served
//! here, on the front door's runtime, and their requests cross to the isolates by channel.

mod authority;
mod bounds;
mod drain;
mod first_request;
mod linger;
pub mod overload;
mod prefixed;
mod send_timeout;
mod tcp_rtt;
pub mod tls;
mod unsent;

use send_timeout::SendTimeout;
use unsent::Unsent;

use self::bounds::{Admission, Admitted};
pub use bounds::FrontDoorLimits;
pub use drain::{Counted, InFlight, InFlightGuard};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use self::first_request::FirstRequest;
use self::prefixed::Prefixed;
use crate::body::ResponseBody;
use crate::error::{ERROR_HEADER, ErrorCode, InvokeError};
use crate::isolate::{Event, FetchRequest, InvocationBody, LocalTask, Stopping};

/// Request bodies whose declared length is at most this are received by the front door and
/// given to the script whole; longer or unsized ones stream.
const SMALL_BODY_BYTES: u64 = 64 << 10;
use crate::node::Node;
use crate::request_id::{RequestId, RequestIds};
use crate::worker::{ConnectionCf, RequestCf};

/// Serves `node` on `listener` until the process ends, with its triggers (cron, queue
/// consumers) started.
pub async fn serve(listener: TcpListener, node: Arc<Node>) -> std::io::Result<()> {
    node.attach_bindings();
    let ids = Arc::new(RequestIds::new());
    let limits = node.front_door();
    let admission = Admission::new(&limits);
    tracing::debug!(
        max_connections = admission.max_total(),
        max_connections_per_ip = limits.max_connections_per_ip,
        "front door"
    );
    let mut failures = 0u32;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => {
                failures = 0;
                conn
            }
            Err(e) => {
                // Out of file descriptors and the like: back off (up to a second) instead of
                // spinning, and log once per streak rather than once per failure.
                if failures == 0 {
                    tracing::warn!("accept failed: {e}; backing off");
                }
                failures = failures.saturating_add(1);
                let wait = 10u64.saturating_mul(1 << failures.min(7)).min(1000);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                continue;
            }
        };
        let admitted = match admission.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(why) => {
                refuse(stream, why);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let cf = Arc::new(ConnectionCf {
            node: node.options().cf.clone(),
            tls: None,
            rtt_ms: tcp_rtt::rtt_ms(&stream),
        });
        tokio::spawn(steer(
            stream,
            Conn {
                node: node.clone(),
                ids: ids.clone(),
                peer,
                scheme: "http",
                cf,
                admitted: Arc::new(admitted),
            },
        ));
    }
}

/// Turns a connection away: a `503` if the socket takes it at once, then closed.
fn refuse(stream: TcpStream, why: &str) {
    tracing::debug!("connection refused: {why}");
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nedge-error: unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
}

/// What serving one connection needs.
#[derive(Clone)]
struct Conn {
    node: Arc<Node>,
    ids: Arc<RequestIds>,
    peer: SocketAddr,
    /// `"http"`, or `"https"` on the TLS listener: the scheme of the URL the app sees.
    scheme: &'static str,
    /// What the connection tells `request.cf`.
    cf: Arc<ConnectionCf>,
    /// Counts the connection against the front door's caps while any clone lives (a
    /// WebSocket the connection became holds one).
    admitted: Arc<Admitted>,
}

/// Reads a new connection's first request head and hands the connection to the thread of the
/// isolate that request is for; serves it here when that is not possible.
async fn steer(mut stream: TcpStream, conn: Conn) {
    let mut head = BytesMut::new();
    let timeout = conn.node.front_door().header_read_timeout;
    let first = first_request::read(&mut stream, &mut head, timeout).await;
    let head = head.freeze();
    let tenant = match &first {
        FirstRequest::Gone => return,
        FirstRequest::Other => None,
        FirstRequest::Http1 { host, path } => conn.node.route(host, path),
    };
    if let Some(tenant) = tenant {
        match stream.into_std() {
            Ok(std) => match tenant.adopt(http1_task(std, head, conn)) {
                Ok(()) => {}
                // No isolate to run it beside: serve it here after all.
                Err(task) => task(Stopping::never()).await,
            },
            Err(e) => tracing::debug!(peer = %conn.peer, "connection lost: {e}"),
        }
        return;
    }
    serve_any(Prefixed::new(head, stream), conn).await;
}

/// Serving an HTTP/1 connection, as a task that can run on another thread (its socket is
/// registered with whichever runtime runs it).
fn http1_task(stream: std::net::TcpStream, head: Bytes, conn: Conn) -> LocalTask {
    Box::new(move |stopping| {
        Box::pin(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve_http1(Prefixed::new(head, stream), conn, stopping).await,
                Err(e) => tracing::debug!(peer = %conn.peer, "connection lost: {e}"),
            }
        })
    })
}

/// Serves an HTTP/1 connection. When `stopping` fires (the isolate beside it stopped: retired
/// or discarded), the connection stays open and its requests go to the tenant's next isolate
/// across threads, until it has been idle for [`LINGER_IDLE`]; then it closes, and the client's
/// next connection is handed to that isolate's thread.
async fn serve_http1(io: Prefixed<TcpStream>, conn: Conn, mut stopping: Stopping) {
    let peer = conn.peer;
    let limits = conn.node.front_door();
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        service_fn(move |req| {
            let busy = activity.begin();
            let counted = conn.node.requests().begin();
            let conn = conn.clone();
            let id = conn.ids.next();
            async move {
                let (res, slots) = handle(&conn, req, id).await;
                drop(busy);
                Ok::<_, Infallible>(res.map(|body| Counted::new(body, counted, slots)))
            }
        })
    };
    let io = SendTimeout::new(io, limits.send_timeout);
    let timed_out = io.timed_out();
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service)
        // A `101` answer hands the connection to the WebSocket it became.
        .with_upgrades();
    let outcome = serve_until(connection, &activity, limits, &mut stopping).await;
    timed_out.release_if_struck();
    if let Err(e) = outcome {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Runs an HTTP/1 connection until it ends, closing it gracefully once idle past the
/// keep-alive limit, or past [`LINGER_IDLE`] once its isolate has stopped. The connection is
/// dropped (and what it held freed) when this returns.
async fn serve_until<S>(
    connection: hyper::server::conn::http1::UpgradeableConnection<
        TokioIo<SendTimeout<Prefixed<TcpStream>>>,
        S,
    >,
    activity: &Activity,
    limits: crate::server::FrontDoorLimits,
    stopping: &mut Stopping,
) -> hyper::Result<()>
where
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = activity.idle_for(limits.keep_alive_idle) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = async {
            stopping.wait().await;
            activity.idle_for(LINGER_IDLE).await;
        } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// How long a connection whose isolate has stopped stays open while idle.
const LINGER_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// A connection's requests in flight and when the last one ended.
#[derive(Default)]
struct Activity {
    inflight: std::sync::atomic::AtomicUsize,
    last_end: std::sync::Mutex<Option<Instant>>,
}

/// One request in flight on a connection, until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once the connection has served a request and been idle for `idle` since.
    async fn idle_for(&self, idle: std::time::Duration) {
        loop {
            let last = *self.last_end.lock().unwrap_or_else(|p| p.into_inner());
            let wait = match last {
                Some(at) if self.inflight.load(Ordering::Relaxed) == 0 => {
                    match idle.checked_sub(at.elapsed()) {
                        None => return,
                        Some(left) => left,
                    }
                }
                _ => idle,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Serves a connection of any HTTP version on the runtime this runs on (a plain one whose
/// first bytes were read to steer it, or a TLS one).
async fn serve_any<IO>(io: IO, conn: Conn)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let conn_limits = conn.node.front_door();
    let send_timeout = conn_limits.send_timeout;
    let service = service_fn(move |req: Request<Incoming>| {
        let counted = conn.node.requests().begin();
        let conn = conn.clone();
        let id = conn.ids.next();
        let h2 = req.version() == http::Version::HTTP_2;
        async move {
            let (res, slots) = handle(&conn, req, id).await;
            Ok::<_, Infallible>(res.map(|body| {
                let body = if h2 {
                    Unsent::new(body, send_timeout)
                } else {
                    Unsent::Pass(body)
                };
                Counted::new(body, counted, slots)
            }))
        }
    });
    let limits = conn_limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams)
        .keep_alive_interval(limits.keep_alive_idle / 2)
        .keep_alive_timeout(limits.header_read_timeout);
    let io = SendTimeout::new(io, limits.send_timeout);
    let timed_out = io.timed_out();
    let outcome = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
    timed_out.release_if_struck();
    if let Err(e) = outcome {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// The `tracing` target of the line logged per request (and of the request's span). A filter
/// can turn it off where formatting and writing a line per request costs too much: on the
/// hello-world path it is about a fifth of edge's CPU per request.
pub const ACCESS_LOG: &str = "edge::access";

/// Answers one request: routes it, admits it past the overload bounds, and hands it to its
/// app. Returns the response and the overload slots it holds until its body has been sent.
async fn handle(
    conn: &Conn,
    req: Request<Incoming>,
    request_id: RequestId,
) -> (Response<ResponseBody>, Option<overload::Slots>) {
    let (node, scheme, cf) = (&*conn.node, conn.scheme, &conn.cf);
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let host = match authority::of(&parts) {
        Ok(host) => host,
        Err(why) => {
            tracing::info!(target: ACCESS_LOG, %request_id, method = %parts.method, path, status = 400, "{why}");
            let e = InvokeError::new(ErrorCode::BadRequest, why);
            return (error_response(request_id, &e), None);
        }
    };
    let Some(tenant) = node.route(host, path) else {
        tracing::info!(target: ACCESS_LOG, %request_id, method = %parts.method, path, host, status = 404, "no route");
        let e = InvokeError::new(
            ErrorCode::NoRoute,
            format!("no app is routed for host {host:?} and path {path:?}"),
        );
        return (error_response(request_id, &e), None);
    };
    // `edge dev`: a change that did not load is shown once, on the next request.
    if node.options().expose_errors
        && let Some(e) = node.take_error_to_show()
    {
        tracing::info!(target: ACCESS_LOG, %request_id, method = %parts.method, path, status = e.code.status().as_u16(), "showing why the last change did not load");
        return (error_response(request_id, &e), None);
    }
    let slots = match overload::admit(tenant.gate(), node.gate(), node.front_door().request_wait)
        .await
    {
        Ok(slots) => slots,
        Err(e) => {
            tracing::info!(target: ACCESS_LOG, tenant = tenant.name(), %request_id, method = %parts.method, path, status = 503, "{}", e.message);
            let res = error_response(request_id, &e);
            tenant.counters().responded(503, started.elapsed());
            return (res, None);
        }
    };
    if node.options().test_scheduled && TEST_SCHEDULED_PATHS.contains(&path) {
        let res = test_scheduled(&tenant, parts.uri.query(), request_id).await;
        return (res, Some(slots));
    }
    let max_body = tenant.limits().request_body_bytes;
    let url = request_url(scheme, host, &parts.uri);
    // What the access log needs of the request, before the request itself moves on.
    let logged = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO)
        .then(|| (parts.method.clone(), path.to_owned()));
    let respond = async {
        let res = invoke(
            &tenant,
            parts,
            body,
            (url, cf, &conn.admitted),
            request_id,
            max_body,
        )
        .await
        .unwrap_or_else(|e| error_response(request_id, &e));
        tenant
            .counters()
            .responded(res.status().as_u16(), started.elapsed());
        res
    };
    // The access log costs a span and a line per request: only when enabled.
    let Some((method, path)) = logged else {
        return (respond.await, Some(slots));
    };
    let span = tracing::info_span!(
        target: ACCESS_LOG,
        "request",
        tenant = tenant.name(),
        %request_id,
        %method,
        path,
    );
    let res = async {
        let response = respond.await;
        tracing::info!(
            target: ACCESS_LOG,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "served"
        );
        response
    }
    .instrument(span)
    .await;
    (res, Some(slots))
}

/// Where `edge dev --test-scheduled` runs the app's `scheduled` handler, as wrangler does
/// (the second is what newer wrangler versions use).
const TEST_SCHEDULED_PATHS: [&str; 2] = ["/__scheduled", "/cdn-cgi/handler/scheduled"];

/// Runs the app's `scheduled` handler for `?cron=` (and `?time=`, ms since the epoch; now by
/// default) and answers as `wrangler dev --test-scheduled` does.
async fn test_scheduled(
    tenant: &crate::tenant::Tenant,
    query: Option<&str>,
    request_id: RequestId,
) -> Response<ResponseBody> {
    let mut event = crate::isolate::ScheduledEvent {
        cron: String::new(),
        scheduled_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64),
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "cron" => event.cron = value.into_owned(),
            "time" => {
                if let Ok(t) = value.parse::<f64>() {
                    event.scheduled_time = t;
                }
            }
            _ => {}
        }
    }
    tracing::info!(tenant = tenant.name(), %request_id, cron = %event.cron, "running the scheduled handler");
    match tenant.dispatch(request_id, Event::Scheduled(event)).await {
        Ok(_) => {
            // As wrangler's answer, a `new Response(text)`.
            let mut res = Response::new(ResponseBody::from("Ran scheduled event".to_string()));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
            res
        }
        Err(e) => error_response(request_id, &e),
    }
}

/// The URL the app sees: `scheme://host/path?query`.
fn request_url(scheme: &str, host: &str, uri: &http::Uri) -> String {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut url = String::with_capacity(scheme.len() + 3 + host.len() + path_and_query.len());
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(host);
    url.push_str(path_and_query);
    url
}

/// Hands the request to its app and waits for the answer. The request's head moves into the
/// invocation as it is (its headers are not copied).
async fn invoke(
    tenant: &crate::tenant::Tenant,
    mut parts: http::request::Parts,
    body: Incoming,
    (url, cf, admitted): (String, &Arc<ConnectionCf>, &Arc<Admitted>),
    request_id: RequestId,
    max_body: u64,
) -> Result<Response<ResponseBody>, InvokeError> {
    // A WebSocket handshake: the connection is the app's to take over with a `101`.
    let upgrade = crate::websocket::upgrade_request(&parts.method, parts.version, &parts.headers)
        .and_then(|accept| {
            let on = parts.extensions.remove::<hyper::upgrade::OnUpgrade>()?;
            Some(Box::new(crate::websocket::Upgrade {
                on,
                accept,
                hold: Box::new(admitted.clone()),
            }))
        });
    let mut headers = parts.headers;
    let cf = RequestCf::of(cf, parts.version, &mut headers);
    if body.size_hint().lower() > max_body {
        linger::discard(body);
        return Err(InvokeError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request body is larger than the app's limit of {} MiB",
                max_body >> 20
            ),
        ));
    }
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
        // A body of unknown length is cut where it passes the limit: the script's read fails.
        InvocationBody::Stream(
            http_body_util::Limited::new(body, max_body as usize)
                .map_err(move |e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!(
                            "the request body is larger than the app's limit of {} MiB",
                            max_body >> 20
                        )
                        .into()
                    } else {
                        e
                    }
                })
                .boxed(),
        )
    };
    tenant
        .dispatch(
            request_id,
            Event::Fetch(FetchRequest {
                method: parts.method,
                url,
                headers,
                body,
                cf: Some(Box::new(cf)),
                upgrade,
            }),
        )
        .await
}

/// A response the runtime itself generates: JSON body and an `edge-error` header.
pub fn error_response(request_id: RequestId, error: &InvokeError) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "error": error.code.as_str(),
        "message": error.message,
        "request_id": request_id.to_string(),
    });
    let mut res = Response::new(ResponseBody::from(Bytes::from(body.to_string())));
    *res.status_mut() = error.code.status();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ERROR_HEADER, HeaderValue::from_static(error.code.as_str()));
    if error.code == ErrorCode::Overloaded {
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(overload::RETRY_AFTER_SECS),
        );
    }
    res
}
