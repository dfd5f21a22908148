//! Outbound WebSockets: a script's `fetch(url, { headers: { Upgrade: "websocket" } })`. The
//! connection goes where the app's outbound `fetch` may go (public addresses unless the node
//! granted it private ones; names resolved and checked here, as the wasm host's outbound
//! HTTP does), over TLS for `https:`/`wss:`, as an HTTP/1.1 upgrade.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};

use super::handshake::{accept_for, client_key};
use super::socket::BoxStream;

/// How long connecting, the TLS handshake and the upgrade may take together.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a refusal's body (a server that answered without upgrading) that is kept.
const REFUSAL_BODY_BYTES: usize = 1 << 20;

/// What the server answered.
pub enum Answer {
    /// It upgraded: the connection (for a [`super::Socket`] in the client role), and the
    /// `101`'s headers.
    Upgraded(BoxStream, Vec<(String, String)>),
    /// It answered without upgrading: its status, headers and (up to 1 MiB of) body.
    Refused {
        /// The status.
        status: u16,
        /// The headers.
        headers: Vec<(String, String)>,
        /// The body, cut at 1 MiB.
        body: Vec<u8>,
    },
}

/// Headers the handshake sets itself (a script's are dropped).
const OWN_HEADERS: [HeaderName; 5] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::HOST,
];

/// Opens a WebSocket connection to `url` (`http`, `https`, `ws` or `wss`) with the script's
/// `headers`. The error says what failed, for the script.
pub async fn connect(
    url: &str,
    headers: &[(String, String)],
    allow_private: bool,
) -> Result<Answer, String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(url, headers, allow_private)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!(
            "the WebSocket handshake with {url} did not complete within {} s",
            HANDSHAKE_TIMEOUT.as_secs()
        )),
    }
}

async fn handshake(
    url: &str,
    headers: &[(String, String)],
    allow_private: bool,
) -> Result<Answer, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("Invalid URL: {url}"))?;
    let tls = match uri.scheme_str() {
        Some("https" | "wss") => true,
        Some("http" | "ws") => false,
        _ => {
            return Err(format!(
                "a WebSocket URL must be http, https, ws or wss: {url}"
            ));
        }
    };
    let host = uri.host().ok_or_else(|| format!("Invalid URL: {url}"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addrs = crate::wasm::outbound::resolve(bare, port, allow_private)
        .await
        .map_err(|e| match e {
            wasmtime_wasi_http::Error::DestinationIpProhibited => {
                format!("{host} is a private or loopback address, which this app may not reach")
            }
            other => format!("{host} cannot be reached: {other}"),
        })?;
    let tcp = tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| format!("connecting to {host}:{port} failed: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: BoxStream = if tls {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|_| format!("Invalid URL: {url}"))?;
        let stream = tokio_rustls::TlsConnector::from(crate::wasm::outbound::client_config())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("the TLS handshake with {host} failed: {e}"))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let key = client_key();
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let h = request.headers_mut();
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            return Err(format!("invalid request header {name:?}"));
        };
        if !OWN_HEADERS.contains(&name) {
            h.append(name, value);
        }
    }
    let authority = uri.authority().map_or(host, |a| a.as_str());
    h.insert(
        header::HOST,
        HeaderValue::from_str(authority).map_err(|_| format!("Invalid URL: {url}"))?,
    );
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).map_err(|e| e.to_string())?,
    );
    if !h.contains_key(header::USER_AGENT) {
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static(crate::isolate::USER_AGENT),
        );
    }
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("the HTTP handshake with {host} failed: {e}"))?;
    tokio::spawn(conn.with_upgrades());
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the WebSocket request to {host} failed: {e}"))?;
    let answered: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status().as_u16();
        // Up to the first MiB of the body: the rest is not read.
        let mut body = Vec::new();
        let mut incoming = response.into_body();
        while body.len() < REFUSAL_BODY_BYTES {
            let Some(Ok(frame)) = incoming.frame().await else {
                break;
            };
            if let Ok(data) = frame.into_data() {
                let room = REFUSAL_BODY_BYTES - body.len();
                body.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        return Ok(Answer::Refused {
            status,
            headers: answered,
            body,
        });
    }
    let accepted = response
        .headers()
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|v| v.as_bytes() == accept_for(key.as_bytes()).as_bytes());
    if !accepted {
        return Err(format!(
            "{host} answered 101 without the Sec-WebSocket-Accept the handshake asked for"
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| format!("the upgrade to a WebSocket with {host} failed: {e}"))?;
    Ok(Answer::Upgraded(
        Box::new(hyper_util::rt::TokioIo::new(upgraded)),
        answered,
    ))
}
