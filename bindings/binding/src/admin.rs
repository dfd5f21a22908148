//! Admin requests a binding answers (its CLI commands on a running node), engine-free.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

/// The body of an admin request, read as the binding needs (with its own size limit); a
/// failure to read the connection is an I/O error.
pub type AdminBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// An admin reply.
pub type AdminReply = Response<Full<Bytes>>;

/// An admin reply to come.
pub type AdminFuture = Pin<Box<dyn Future<Output = AdminReply> + Send>>;

/// An authorized request to the node's admin endpoint, as a binding sees it.
pub struct AdminRequest {
    /// The method.
    pub method: Method,
    /// The path's segments after `/v1`, still percent-encoded (`["kv", "ns", "keys"]`).
    pub segments: Vec<String>,
    /// The query, decoded.
    pub query: HashMap<String, String>,
    /// The body; a binding that takes it leaves an empty one behind.
    pub body: AdminBody,
}

impl AdminRequest {
    /// Takes the body.
    pub fn take_body(&mut self) -> AdminBody {
        std::mem::replace(
            &mut self.body,
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
}

/// A JSON reply.
pub fn json(status: StatusCode, body: serde_json::Value) -> AdminReply {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// An error reply: `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> AdminReply {
    json(status, serde_json::json!({ "error": message }))
}
