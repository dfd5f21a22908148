//! Requests to the admin endpoint: token check, then the operation the path names (the KV ones
//! in [`super::kv`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use edge_kv::{KvBackend, KvError, ManualClock, Namespace};

use super::kv;

pub(super) struct AdminState {
    pub(super) store: Arc<edge_kv::RedbBackend>,
    pub(super) token: String,
    pub(super) clock: Option<ManualClock>,
}

pub(super) type Reply = Response<Full<Bytes>>;

pub(super) async fn handle(state: &AdminState, req: Request<Incoming>) -> Reply {
    if !authorized(state, &req) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method, parts.as_slice()) {
        (Method::POST, ["v1", "clock", "advance"]) => match &state.clock {
            Some(clock) => match query.get("secs").and_then(|s| s.parse().ok()) {
                Some(secs) => {
                    clock.advance(secs);
                    json(StatusCode::OK, serde_json::json!({ "advanced": secs }))
                }
                None => error(StatusCode::BAD_REQUEST, "secs must be a whole number"),
            },
            None => error(
                StatusCode::NOT_FOUND,
                "the clock can only be moved when the node runs with EDGE_KV_CLOCK=manual",
            ),
        },
        (Method::GET, ["v1", "kv", ns, "keys"]) => match namespace(state, ns) {
            Some(ns) => kv::list(&ns, &query).await,
            None => bad_path(),
        },
        (method, ["v1", "kv", ns, "values", key]) => {
            let (Some(ns), Some(key)) = (namespace(state, ns), decode(key)) else {
                return bad_path();
            };
            match method {
                Method::GET => kv::get(&ns, &key).await,
                Method::PUT => kv::put(&ns, &key, &query, req.into_body()).await,
                Method::DELETE => kv::delete(&ns, &key).await,
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or DELETE"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such admin path"),
    }
}

fn authorized(state: &AdminState, req: &Request<Incoming>) -> bool {
    let Some(given) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Constant time in the token's length: no early exit on the first differing byte.
    let (a, b) = (given.as_bytes(), state.token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn namespace(state: &AdminState, ns: &str) -> Option<Namespace> {
    let id = decode(ns)?;
    let store: Arc<dyn KvBackend> = state.store.clone();
    Some(Namespace::new(store, id))
}

/// A page of `list` as JSON, shaped as Workers returns it (metadata parsed).
pub fn list_json(page: edge_kv::ListResult) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = page
        .keys
        .into_iter()
        .map(|k| {
            let mut o = serde_json::json!({ "name": k.name });
            if let Some(at) = k.expiration {
                o["expiration"] = at.into();
            }
            if let Some(meta) = k.metadata {
                o["metadata"] =
                    serde_json::from_str(&meta).unwrap_or(serde_json::Value::String(meta));
            }
            o
        })
        .collect();
    let mut out = serde_json::json!({ "keys": keys, "list_complete": page.list_complete });
    if let Some(c) = page.cursor {
        out["cursor"] = c.into();
    }
    out
}

pub(super) fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

pub(super) fn error(status: StatusCode, message: &str) -> Reply {
    json(status, serde_json::json!({ "error": message }))
}

fn bad_path() -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        "namespace and key must be percent-encoded UTF-8",
    )
}

pub(super) fn kv_error(e: &KvError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, &e.to_string())
}
