//! The KV routes of the node's admin endpoint (for `edge kv` on a running node), each through
//! [`Namespace`], so the same rules apply as in scripts. Paths, under `/v1`, with namespace
//! ids and keys percent-encoded:
//! - `GET    kv/{ns}/keys?prefix=&limit=&cursor=` → `{keys, list_complete, cursor?}`
//! - `GET    kv/{ns}/values/{key}` → the value; metadata and expiration in the
//!   [`METADATA_HEADER`] (percent-encoded JSON) and [`EXPIRATION_HEADER`] headers; 404 if absent
//! - `PUT    kv/{ns}/values/{key}?expiration=&expiration_ttl=&metadata=`, the value as body
//! - `DELETE kv/{ns}/values/{key}`
//! - `POST   clock/advance?secs=N`, only when the node runs on a manual clock

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use edge_binding::admin::{AdminBody, AdminFuture, AdminReply, AdminRequest, error, json};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::binding::KvNode;
use crate::error::KvError;
use crate::namespace::{ListOptions, ListResult, Namespace, PutOptions};
use crate::rules;

/// Header carrying a value's metadata (percent-encoded JSON).
pub const METADATA_HEADER: &str = "edge-kv-metadata";
/// Header carrying a value's expiration (Unix seconds).
pub const EXPIRATION_HEADER: &str = "edge-kv-expiration";

/// The reply to `request` if its path is one of KV's.
pub(crate) fn route(node: Arc<KvNode>, request: &mut AdminRequest) -> Option<AdminFuture> {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let method = request.method.clone();
    let query = std::mem::take(&mut request.query);
    Some(match segments.as_slice() {
        ["clock", "advance"] if method == Method::POST => {
            let reply = advance(&node, &query);
            Box::pin(async move { reply })
        }
        ["kv", ns, "keys"] => {
            let Some(ns) = decode(ns).map(|id| node.namespace(id)) else {
                return Some(Box::pin(async { bad_path() }));
            };
            Box::pin(async move { list(&ns, &query).await })
        }
        ["kv", ns, "values", key] => {
            let (Some(ns), Some(key)) = (decode(ns).map(|id| node.namespace(id)), decode(key))
            else {
                return Some(Box::pin(async { bad_path() }));
            };
            match method {
                Method::GET => Box::pin(async move { get(&ns, &key).await }),
                Method::PUT => {
                    let body = request.take_body();
                    Box::pin(async move { put(&ns, &key, &query, body).await })
                }
                Method::DELETE => Box::pin(async move { delete(&ns, &key).await }),
                _ => Box::pin(async {
                    error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or DELETE")
                }),
            }
        }
        _ => {
            request.query = query;
            return None;
        }
    })
}

/// `POST clock/advance?secs=N`.
fn advance(node: &KvNode, query: &HashMap<String, String>) -> AdminReply {
    let Some(clock) = node.clock() else {
        return error(
            StatusCode::NOT_FOUND,
            "the clock can only be moved when the node runs with EDGE_KV_CLOCK=manual",
        );
    };
    match query.get("secs").and_then(|s| s.parse().ok()) {
        Some(secs) => {
            clock.advance(secs);
            json(StatusCode::OK, serde_json::json!({ "advanced": secs }))
        }
        None => error(StatusCode::BAD_REQUEST, "secs must be a whole number"),
    }
}

/// `GET kv/NS/keys?prefix=&limit=&cursor=`: one page of keys.
async fn list(ns: &Namespace, query: &HashMap<String, String>) -> AdminReply {
    let options = ListOptions {
        prefix: query.get("prefix").cloned(),
        limit: query.get("limit").map(|l| l.parse().unwrap_or(f64::NAN)),
        cursor: query.get("cursor").cloned(),
    };
    match ns.list(options).await {
        Ok(page) => json(StatusCode::OK, list_json(page)),
        Err(e) => kv_error(&e),
    }
}

/// `GET kv/NS/values/KEY`: the value, with its metadata and expiration in headers.
async fn get(ns: &Namespace, key: &str) -> AdminReply {
    match ns.get(key).await {
        Ok(Some(entry)) => {
            let mut res = Response::new(Full::new(Bytes::from(entry.value)));
            if let Some(meta) = entry.metadata {
                let encoded = utf8_percent_encode(&meta, NON_ALPHANUMERIC).to_string();
                if let Ok(v) = encoded.parse() {
                    res.headers_mut().insert(METADATA_HEADER, v);
                }
            }
            if let Some(at) = entry.expiration {
                res.headers_mut().insert(EXPIRATION_HEADER, at.into());
            }
            res
        }
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no key {key:?}")),
        Err(e) => kv_error(&e),
    }
}

/// `PUT kv/NS/values/KEY?expiration=&expiration_ttl=&metadata=`: the body is the value.
async fn put(
    ns: &Namespace,
    key: &str,
    query: &HashMap<String, String>,
    body: AdminBody,
) -> AdminReply {
    let number = |k: &str| query.get(k).map(|v| v.parse().unwrap_or(f64::NAN));
    let options = PutOptions {
        expiration: number("expiration"),
        expiration_ttl: number("expiration_ttl"),
        metadata: query.get("metadata").cloned(),
    };
    let body = match Limited::new(body, rules::MAX_VALUE_BYTES + 1)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let too_big = rules::check_value(rules::MAX_VALUE_BYTES + 1);
            return kv_error(&too_big.expect_err("one byte over the limit"));
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    match ns.put(key, body, options).await {
        Ok(()) => json(StatusCode::OK, serde_json::json!({ "ok": true })),
        Err(e) => kv_error(&e),
    }
}

/// `DELETE kv/NS/values/KEY`.
async fn delete(ns: &Namespace, key: &str) -> AdminReply {
    match ns.delete(key).await {
        Ok(()) => json(StatusCode::OK, serde_json::json!({ "ok": true })),
        Err(e) => kv_error(&e),
    }
}

/// A page of `list` as JSON, shaped as Workers returns it (metadata parsed).
pub fn list_json(page: ListResult) -> serde_json::Value {
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

fn kv_error(e: &KvError) -> AdminReply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, &e.to_string())
}

fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn bad_path() -> AdminReply {
    error(
        StatusCode::BAD_REQUEST,
        "namespace and key must be percent-encoded UTF-8",
    )
}
