//! The KV operations of the admin endpoint, each through [`Namespace`], so the same rules
//! apply as in scripts.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use edge_kv::{ListOptions, Namespace, PutOptions, rules};

use super::handler::{Reply, error, json, kv_error, list_json};

/// Header carrying a value's metadata (percent-encoded JSON).
pub const METADATA_HEADER: &str = "edge-kv-metadata";
/// Header carrying a value's expiration (Unix seconds).
pub const EXPIRATION_HEADER: &str = "edge-kv-expiration";

/// `GET /v1/kv/NS/keys?prefix=&limit=&cursor=`: one page of keys.
pub(super) async fn list(ns: &Namespace, query: &HashMap<String, String>) -> Reply {
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

/// `GET /v1/kv/NS/values/KEY`: the value, with its metadata and expiration in headers.
pub(super) async fn get(ns: &Namespace, key: &str) -> Reply {
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

/// `PUT /v1/kv/NS/values/KEY?expiration=&expiration_ttl=&metadata=`: the body is the value.
pub(super) async fn put(
    ns: &Namespace,
    key: &str,
    query: &HashMap<String, String>,
    body: Incoming,
) -> Reply {
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

/// `DELETE /v1/kv/NS/values/KEY`.
pub(super) async fn delete(ns: &Namespace, key: &str) -> Reply {
    match ns.delete(key).await {
        Ok(()) => json(StatusCode::OK, serde_json::json!({ "ok": true })),
        Err(e) => kv_error(&e),
    }
}
