//! The queue routes of the node's admin endpoint (for `edge queue`), all under `/v1`:
//! - `GET  queues` → `[{queue, ready, delayed, in_flight}]`
//! - `POST queues/{queue}/messages?content_type=text|json|bytes` with the body → `{ok: true}`
//! - `GET  queues/{queue}/messages?limit=N` → `[{id, timestamp, attempts, content_type, body}]`
//!   (bodies of `text`/`json` as text, others base64-free: their length only)

use std::sync::Arc;

use edge_binding::admin::{AdminFuture, AdminRequest, error, json};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::binding::QueueNode;
use crate::message::{ContentType, NewMessage};
use crate::rules;

/// The reply to `request` if its path is one of the queues'.
pub(crate) fn route(node: Arc<QueueNode>, request: &mut AdminRequest) -> Option<AdminFuture> {
    let segments: Vec<String> = request.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (request.method.clone(), segments.as_slice()) {
        (Method::GET, ["queues"]) => {
            let stats = node.store().stats();
            Some(Box::pin(async move {
                json(
                    StatusCode::OK,
                    serde_json::to_value(stats).unwrap_or_default(),
                )
            }))
        }
        (Method::POST, ["queues", queue, "messages"]) => {
            let queue = queue.to_string();
            let content_type = request
                .query
                .get("content_type")
                .map_or(Some(ContentType::Text), |c| ContentType::parse(c));
            let body = request.take_body();
            Some(Box::pin(async move {
                let Some(content_type) = content_type.filter(|c| *c != ContentType::V8) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "content_type must be text, json or bytes",
                    );
                };
                let body = match Limited::new(body, rules::MAX_MESSAGE_BYTES + 1)
                    .collect()
                    .await
                {
                    Ok(b) => b.to_bytes().to_vec(),
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("cannot read the body: {e}"),
                        );
                    }
                };
                if let Err(e) = rules::check_message(body.len()) {
                    return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
                }
                if content_type == ContentType::Json
                    && serde_json::from_slice::<serde_json::Value>(&body).is_err()
                {
                    return error(StatusCode::BAD_REQUEST, "the body is not JSON");
                }
                let message = NewMessage {
                    body,
                    content_type,
                    delay_secs: 0,
                };
                match node.store().send(&queue, vec![message]).await {
                    Ok(()) => json(StatusCode::OK, serde_json::json!({ "ok": true })),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                }
            }))
        }
        (Method::GET, ["queues", queue, "messages"]) => {
            let queue = queue.to_string();
            let limit = request
                .query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(10usize)
                .min(1000);
            Some(Box::pin(async move {
                match node.store().peek(&queue, limit).await {
                    Ok(messages) => {
                        let out: Vec<serde_json::Value> = messages
                            .into_iter()
                            .map(|m| {
                                let body = match m.content_type {
                                    ContentType::Text | ContentType::Json => {
                                        serde_json::Value::String(
                                            String::from_utf8_lossy(&m.body).into_owned(),
                                        )
                                    }
                                    _ => serde_json::Value::Null,
                                };
                                serde_json::json!({
                                    "id": m.id,
                                    "timestamp": m.timestamp_ms,
                                    "attempts": m.attempts,
                                    "content_type": m.content_type.as_str(),
                                    "bytes": m.body.len(),
                                    "body": body,
                                })
                            })
                            .collect();
                        json(StatusCode::OK, serde_json::Value::Array(out))
                    }
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                }
            }))
        }
        _ => None,
    }
}
