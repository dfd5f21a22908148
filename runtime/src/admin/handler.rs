//! Requests to the admin endpoint: the token check, then the node's own paths (`/metrics`,
//! `/v1/apps`), then the binding whose path it is.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use edge_binding::admin::{AdminReply, AdminRequest, error, json};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::node::Node;

pub(super) struct AdminState {
    pub(super) node: Arc<Node>,
    pub(super) token: String,
}

pub(super) async fn handle(state: &AdminState, req: Request<Incoming>) -> AdminReply {
    if !authorized(state, &req) {
        let mut reply = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        reply.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return reply;
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut reply =
                http::Response::new(Full::new(Bytes::from(super::metrics::render(&state.node))));
            reply.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(super::metrics::CONTENT_TYPE),
            );
            return reply;
        }
        (&Method::GET, "/v1/apps") => {
            return json(StatusCode::OK, super::apps::list(&state.node));
        }
        _ => {}
    }
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let Some(path) = req.uri().path().strip_prefix("/v1/") else {
        return error(StatusCode::NOT_FOUND, "no such admin path");
    };
    let segments = path.split('/').map(str::to_string).collect();
    let (head, body) = req.into_parts();
    let mut request = AdminRequest {
        method: head.method,
        segments,
        query,
        body: body.map_err(std::io::Error::other).boxed_unsync(),
    };
    match state.node.bindings().admin(&mut request) {
        Some(reply) => reply.await,
        None => error(StatusCode::NOT_FOUND, "no such admin path"),
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
