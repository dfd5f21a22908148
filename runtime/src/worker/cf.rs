//! `request.cf`: what the node knows of where a request came from and how it arrived.
//!
//! On Workers, Cloudflare's edge fills it in; on an edge node it has three sources:
//! - the node's operator ([`CfConfig`]): the colo name, and fixed geo values (`edge serve --cf
//!   country=DE --cf city=Berlin …`) for a node that serves one place;
//! - a front proxy the operator trusts ([`CfConfig::geo_header`]): a request header holding a
//!   JSON object of geo values per request (a GeoIP-aware load balancer sets it); the header
//!   is taken out of what the app sees;
//! - the connection itself: `httpProtocol`, `tlsVersion`/`tlsCipher` (on the TLS listener),
//!   `clientTcpRtt` (the kernel's smoothed RTT of the client's TCP connection when it was
//!   accepted), `clientAcceptEncoding` (the client's own `Accept-Encoding`).
//!
//! Built only when the script reads `request.cf` ([`RequestCf::to_json`]).

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// The geo fields an operator or a trusted proxy may set, and whether each is a number
/// (`asn`) or a string (the rest, `latitude`/`longitude` included, as on Workers).
const GEO_FIELDS: [(&str, bool); 13] = [
    ("asn", true),
    ("asOrganization", false),
    ("city", false),
    ("continent", false),
    ("country", false),
    ("isEUCountry", false),
    ("latitude", false),
    ("longitude", false),
    ("metroCode", false),
    ("postalCode", false),
    ("region", false),
    ("regionCode", false),
    ("timezone", false),
];

/// The longest geo value (or trusted header) accepted, in bytes.
const MAX_GEO_BYTES: usize = 4096;

/// Why a geo setting was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum CfError {
    /// Not one of Workers' geo fields.
    #[error("`{0}` is not a request.cf geo field (one of: {fields})", fields = field_list())]
    UnknownField(String),
    /// `asn` that is not a whole number.
    #[error("request.cf `{0}` must be a whole number, not {1:?}")]
    NotANumber(String, String),
    /// A trusted header name that is not one.
    #[error("{0:?} is not a header name")]
    BadHeader(String),
    /// A value past [`MAX_GEO_BYTES`].
    #[error("request.cf `{0}` is longer than {MAX_GEO_BYTES} bytes")]
    TooLong(String),
}

fn field_list() -> String {
    GEO_FIELDS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operator's part of `request.cf`, the same for every request of the node.
#[derive(Clone, Debug)]
pub struct CfConfig {
    /// `request.cf.colo`: the node's name (Workers gives its data centre's IATA code).
    pub colo: String,
    /// Fixed geo values.
    geo: Map<String, Value>,
    /// A request header a trusted front proxy sets to a JSON object of geo values.
    pub geo_header: Option<HeaderName>,
}

impl Default for CfConfig {
    fn default() -> Self {
        Self {
            colo: "EDGE".into(),
            geo: Map::new(),
            geo_header: None,
        }
    }
}

/// Checks one geo field and gives it its JSON type.
fn geo_value(name: &str, value: &str) -> Result<Value, CfError> {
    let Some((_, number)) = GEO_FIELDS.iter().find(|(field, _)| *field == name) else {
        return Err(CfError::UnknownField(name.into()));
    };
    if value.len() > MAX_GEO_BYTES {
        return Err(CfError::TooLong(name.into()));
    }
    if *number {
        return value
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| CfError::NotANumber(name.into(), value.into()));
    }
    Ok(Value::String(value.into()))
}

impl CfConfig {
    /// Sets a fixed geo value (`edge serve --cf NAME=VALUE`).
    pub fn set_geo(&mut self, name: &str, value: &str) -> Result<(), CfError> {
        let value = geo_value(name, value)?;
        self.geo.insert(name.into(), value);
        Ok(())
    }

    /// Names the request header a trusted front proxy sets to a JSON object of geo values.
    pub fn set_geo_header(&mut self, name: &str) -> Result<(), CfError> {
        let header = HeaderName::try_from(name).map_err(|_| CfError::BadHeader(name.to_owned()))?;
        self.geo_header = Some(header);
        Ok(())
    }

    /// The geo values a trusted proxy's header gives: the known fields of a JSON object
    /// (others, and values of the wrong type, are ignored: the proxy is trusted, not its
    /// every field); `None` when the header is not such an object.
    fn header_geo(value: &HeaderValue) -> Option<Map<String, Value>> {
        if value.len() > MAX_GEO_BYTES {
            return None;
        }
        let Ok(Value::Object(given)) = serde_json::from_slice::<Value>(value.as_bytes()) else {
            return None;
        };
        let mut geo = Map::new();
        for (name, value) in given {
            let text = match &value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            if let Ok(value) = geo_value(&name, &text) {
                geo.insert(name, value);
            }
        }
        Some(geo)
    }
}

/// How the client's connection was secured, for `tlsVersion` and `tlsCipher`.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsInfo {
    /// As Workers spells it: `TLSv1.3`, `TLSv1.2`.
    pub version: &'static str,
    /// As Workers (BoringSSL) spells it: `AEAD-AES128-GCM-SHA256`, `ECDHE-RSA-AES128-GCM-SHA256`.
    pub cipher: String,
}

/// What one client connection tells `request.cf`, shared by its requests.
#[derive(Debug)]
pub struct ConnectionCf {
    /// The node's part.
    pub node: Arc<CfConfig>,
    /// `None` on the plain-HTTP listener.
    pub tls: Option<TlsInfo>,
    /// The connection's round-trip time when it was accepted, in milliseconds.
    pub rtt_ms: Option<u32>,
}

/// What `request.cf` is built from for one request.
#[derive(Debug)]
pub struct RequestCf {
    /// The connection's part.
    pub conn: Arc<ConnectionCf>,
    /// The request's HTTP version.
    pub version: http::Version,
    /// The client's `Accept-Encoding`, as it sent it.
    pub accept_encoding: Option<HeaderValue>,
    /// The trusted proxy's geo header, when the node names one and the request has it.
    pub geo: Option<HeaderValue>,
}

impl RequestCf {
    /// What the front door records for a request: takes the trusted geo header (if the node
    /// names one) out of `headers`, so the app sees it only in `request.cf`.
    pub fn of(
        conn: &Arc<ConnectionCf>,
        version: http::Version,
        headers: &mut http::HeaderMap,
    ) -> Self {
        // More than one: a client's own alongside the proxy's (a proxy that appends rather than
        // replaces); none is trusted.
        let geo = conn.node.geo_header.as_ref().and_then(|name| {
            let mut values = headers.get_all(name).iter();
            let value = values.next().cloned();
            let single = values.next().is_none();
            headers.remove(name);
            value.filter(|_| single)
        });
        Self {
            conn: conn.clone(),
            version,
            accept_encoding: headers.get(http::header::ACCEPT_ENCODING).cloned(),
            geo,
        }
    }

    /// `request.cf` as the script sees it.
    pub fn to_json(&self) -> Value {
        let node = &self.conn.node;
        let mut cf = node.geo.clone();
        if let Some(geo) = self.geo.as_ref().and_then(CfConfig::header_geo) {
            cf.extend(geo);
        }
        cf.insert("colo".into(), node.colo.clone().into());
        let protocol = match self.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        };
        cf.insert("httpProtocol".into(), protocol.into());
        if let Some(encoding) = self.accept_encoding.as_ref().and_then(|v| v.to_str().ok()) {
            cf.insert("clientAcceptEncoding".into(), encoding.into());
        }
        if let Some(rtt) = self.conn.rtt_ms {
            cf.insert("clientTcpRtt".into(), rtt.into());
        }
        // HTTP/2 priority frames are not exposed by the HTTP library: none is known.
        cf.insert("requestPriority".into(), "".into());
        if let Some(tls) = &self.conn.tls {
            cf.insert("tlsVersion".into(), tls.version.into());
            cf.insert("tlsCipher".into(), tls.cipher.clone().into());
        }
        Value::Object(cf)
    }
}

/// rustls's name of a cipher suite in BoringSSL's spelling (what Workers reports).
pub fn boringssl_cipher_name(rustls_name: &str) -> String {
    let known = match rustls_name {
        "TLS13_AES_128_GCM_SHA256" => "AEAD-AES128-GCM-SHA256",
        "TLS13_AES_256_GCM_SHA384" => "AEAD-AES256-GCM-SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "AEAD-CHACHA20-POLY1305-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        other => other,
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(config: CfConfig, tls: Option<TlsInfo>) -> Arc<ConnectionCf> {
        Arc::new(ConnectionCf {
            node: Arc::new(config),
            tls,
            rtt_ms: Some(3),
        })
    }

    #[test]
    fn fixed_geo_values_are_checked_and_typed() {
        let mut config = CfConfig::default();
        config.set_geo("country", "DE").unwrap();
        config.set_geo("asn", "64500").unwrap();
        config.set_geo("latitude", "52.52").unwrap();
        assert_eq!(
            config.set_geo("asn", "AS64500"),
            Err(CfError::NotANumber("asn".into(), "AS64500".into()))
        );
        assert!(matches!(
            config.set_geo("colo", "x"),
            Err(CfError::UnknownField(_))
        ));
        let cf = RequestCf::of(
            &conn(config, None),
            http::Version::HTTP_11,
            &mut http::HeaderMap::new(),
        );
        let json = cf.to_json();
        assert_eq!(json["country"], "DE");
        assert_eq!(json["asn"], 64500);
        assert_eq!(json["latitude"], "52.52");
        assert_eq!(json["colo"], "EDGE");
        assert_eq!(json["httpProtocol"], "HTTP/1.1");
        assert_eq!(json["clientTcpRtt"], 3);
        assert!(json.get("tlsVersion").is_none());
    }

    #[test]
    fn a_trusted_header_is_taken_out_and_only_its_known_fields_are_used() {
        let mut config = CfConfig::default();
        config.set_geo("country", "DE").unwrap();
        config.geo_header = Some(HeaderName::from_static("x-geo"));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-geo",
            HeaderValue::from_static(
                r#"{"country":"FR","city":"Lyon","asn":"13335","colo":"X","region":[1]}"#,
            ),
        );
        headers.insert("accept-encoding", HeaderValue::from_static("br, gzip"));
        let cf = RequestCf::of(
            &conn(
                config,
                Some(TlsInfo {
                    version: "TLSv1.3",
                    cipher: "AEAD-AES128-GCM-SHA256".into(),
                }),
            ),
            http::Version::HTTP_2,
            &mut headers,
        );
        assert!(headers.get("x-geo").is_none());
        let json = cf.to_json();
        assert_eq!(json["country"], "FR");
        assert_eq!(json["city"], "Lyon");
        assert_eq!(json["asn"], 13335);
        assert_eq!(json["colo"], "EDGE");
        assert!(json.get("region").is_none());
        assert_eq!(json["clientAcceptEncoding"], "br, gzip");
        assert_eq!(json["httpProtocol"], "HTTP/2");
        assert_eq!(json["tlsVersion"], "TLSv1.3");
        // Not JSON: ignored, the fixed values stay.
        let mut bad = http::HeaderMap::new();
        bad.insert("x-geo", HeaderValue::from_static("FR"));
        let node = Arc::new(ConnectionCf {
            node: cf.conn.node.clone(),
            tls: None,
            rtt_ms: None,
        });
        assert_eq!(
            RequestCf::of(&node, http::Version::HTTP_11, &mut bad).to_json()["country"],
            "DE"
        );
        // Two of them (a client's and the proxy's): neither is used, both are removed.
        let mut two = http::HeaderMap::new();
        two.append("x-geo", HeaderValue::from_static(r#"{"country":"FR"}"#));
        two.append("x-geo", HeaderValue::from_static(r#"{"country":"IT"}"#));
        let cf = RequestCf::of(&node, http::Version::HTTP_11, &mut two);
        assert!(two.get("x-geo").is_none());
        assert_eq!(cf.to_json()["country"], "DE");
    }
}
