//! Outbound HTTP from a wasm guest (`wasi:http/outgoing-handler`), under the same rules as
//! JavaScript `fetch`: at most `subrequests` per invocation (one more is refused and the
//! invocation answers `503 subrequest-limit` if it has not answered), and only public
//! addresses unless the node granted the app `[outbound] allow_private`. Names are resolved
//! here and the connection goes only to the addresses that passed the check, so a public name
//! that resolves to a private address (DNS rebinding) reaches nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::state::Breach;
use crate::limits::LimitKind;

/// How long connecting (and the TLS handshake) may take when the guest sets no timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One invocation's outbound policy and count.
pub(super) struct Outbound {
    pub(super) tenant: Arc<str>,
    pub(super) allow_private: bool,
    pub(super) remaining: u32,
    pub(super) breach: Arc<Breach>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if self.remaining == 0 {
            tracing::warn!(tenant = &*self.tenant, "subrequest limit exceeded");
            self.breach.set(LimitKind::Subrequests);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.remaining -= 1;
        let allow_private = self.allow_private;
        Box::new(async move {
            let response = send(request, options, allow_private).await?;
            Ok((
                response,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    allow_private: bool,
) -> Result<http::Response<WasiBody>, Error> {
    if !request.headers().contains_key(http::header::USER_AGENT) {
        request.headers_mut().insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(crate::isolate::USER_AGENT),
        );
    }
    let uri = request.uri().clone();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(CONNECT_TIMEOUT);
    let addrs = resolve(bare, port, allow_private).await?;
    let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&addrs[..]))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let _ = tcp.set_nodelay(true);
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = if tls {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let stream = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(client_config()).connect(name, tcp),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Tls)?;
        exchange(stream, request).await?
    } else {
        exchange(tcp, request).await?
    };
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

/// The addresses `host` may be reached at: literals and resolved names, private ones dropped
/// unless allowed.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Error> {
    let found: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Error::DestinationNotFound)?
            .collect(),
    };
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| allow_private || edge_web::is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(if found.is_empty() {
            Error::DestinationNotFound
        } else {
            Error::DestinationIpProhibited
        });
    }
    Ok(allowed)
}

async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
) -> Result<http::Response<hyper::body::Incoming>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(Error::from)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(request).await.map_err(Error::from)
}

pub(crate) fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
