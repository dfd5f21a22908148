//! The WebSocket opening handshake (RFC 6455 §4): whether a request asks to be upgraded, the
//! `Sec-WebSocket-Accept` that answers its key, and the key a client sends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, Method, Version, header};
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to a key before hashing it.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request that asked for a WebSocket and can be given one: what the front door hands the
/// worker so that a `101` answer can take over the connection.
pub struct Upgrade {
    /// The connection's bytes once hyper has sent the `101`.
    pub on: hyper::upgrade::OnUpgrade,
    /// The `Sec-WebSocket-Accept` that answers the request's key.
    pub accept: HeaderValue,
    /// Kept for as long as the socket lives: the connection's place under the front door's
    /// connection caps.
    pub hold: Box<dyn Send + Sync>,
}

/// The `Sec-WebSocket-Accept` for a request's `Sec-WebSocket-Key`, or `None` when the request
/// is not a WebSocket upgrade a server can accept: `GET` over HTTP/1.1 with `Upgrade:
/// websocket`, `Connection: upgrade`, version 13 and a key of 16 bytes in base64.
pub fn upgrade_request(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Option<HeaderValue> {
    if method != Method::GET || version != Version::HTTP_11 {
        return None;
    }
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.as_bytes();
    let decoded = STANDARD.decode(key.trim_ascii()).ok()?;
    if decoded.len() != 16 {
        return None;
    }
    HeaderValue::from_str(&accept_for(key.trim_ascii())).ok()
}

/// Whether any `name` header lists `token` (comma-separated, case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// `base64(sha1(key + GUID))`: the accept value for `key`.
pub fn accept_for(key: &[u8]) -> String {
    let mut hash = Sha1::new();
    hash.update(key);
    hash.update(GUID);
    STANDARD.encode(hash.finalize())
}

/// A fresh `Sec-WebSocket-Key` for a client handshake.
pub fn client_key() -> String {
    let mut bytes = [0u8; 16];
    // The key is a nonce, not a secret: should the OS refuse randomness, zeros still work.
    let _ = getrandom::fill(&mut bytes);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        h
    }

    #[test]
    fn the_rfc_example_key_is_accepted_as_the_rfc_says() {
        let accept = upgrade_request(&Method::GET, Version::HTTP_11, &upgrade_headers()).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn requests_that_cannot_be_upgraded_are_not() {
        let h = upgrade_headers();
        assert!(upgrade_request(&Method::POST, Version::HTTP_11, &h).is_none());
        assert!(upgrade_request(&Method::GET, Version::HTTP_2, &h).is_none());
        for (name, value) in [
            (header::UPGRADE, "h2c"),
            (header::CONNECTION, "keep-alive"),
            (header::SEC_WEBSOCKET_VERSION, "8"),
            (header::SEC_WEBSOCKET_KEY, "c2hvcnQ="),
            (header::SEC_WEBSOCKET_KEY, "not base64!"),
        ] {
            let mut h = upgrade_headers();
            h.insert(name.clone(), value.parse().unwrap());
            assert!(
                upgrade_request(&Method::GET, Version::HTTP_11, &h).is_none(),
                "{name}: {value}"
            );
        }
        let mut h = upgrade_headers();
        h.remove(header::SEC_WEBSOCKET_KEY);
        assert!(upgrade_request(&Method::GET, Version::HTTP_11, &h).is_none());
    }

    #[test]
    fn a_client_key_is_sixteen_random_bytes() {
        let key = client_key();
        assert_eq!(STANDARD.decode(&key).unwrap().len(), 16);
        assert_ne!(key, client_key());
    }
}
