//! The fetch handler: a request in, a response out.

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// An HTTP request, its body read in full.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path and query, e.g. `/items?page=2`.
    pub path_with_query: String,
    /// The headers, in order (names lower-case).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(p, _)| p)
    }

    /// The query string, without `?` (empty if there is none).
    pub fn query(&self) -> &str {
        self.path_with_query.split_once('?').map_or("", |(_, q)| q)
    }

    /// The first value of the header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and `body`, no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, body.into()).with_header("content-type", "text/plain; charset=utf-8")
    }

    /// An `application/json` response of JSON text you made.
    pub fn json(status: u16, json: impl Into<String>) -> Self {
        Self::new(status, json.into()).with_header("content-type", "application/json")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// An app's fetch handler (JavaScript's `fetch(request, env, ctx)`); export it with
/// [`export_fetch!`](crate::export_fetch).
pub trait Fetch {
    /// Answers one request.
    fn fetch(request: Request) -> Response;
}

/// Reads the request, calls the handler, writes its response. Used by [`export_fetch!`].
#[doc(hidden)]
pub fn serve<F: Fetch>(incoming: IncomingRequest, out: ResponseOutparam) {
    let method = match incoming.method() {
        Method::Get => "GET".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Other(m) => m,
    };
    let headers = incoming.headers().entries();
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".into());
    let mut body = Vec::new();
    if let Ok(incoming_body) = incoming.consume()
        && let Ok(stream) = incoming_body.stream()
    {
        // Until the end, or an error (a cut body: what arrived is what the handler gets).
        while let Ok(chunk) = stream.blocking_read(64 << 10) {
            body.extend_from_slice(&chunk);
        }
    }
    let response = F::fetch(Request {
        method,
        path_with_query,
        headers,
        body,
    });
    let fields = Fields::new();
    for (name, value) in &response.headers {
        // A header wasi:http refuses (a forbidden or malformed one) is left out.
        let _ = fields.append(name, value);
    }
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    let Ok(out_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(stream) = out_body.write() {
        for piece in response.body.chunks(4096) {
            if stream.blocking_write_and_flush(piece).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(out_body, None);
}

/// Exports `$t`'s [`Fetch`] implementation as the component's `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! export_fetch {
    ($t:ty) => {
        const _: () = {
            struct __EdgeFetch;
            impl $crate::wasi::exports::http::incoming_handler::Guest for __EdgeFetch {
                fn handle(
                    request: $crate::wasi::http::types::IncomingRequest,
                    out: $crate::wasi::http::types::ResponseOutparam,
                ) {
                    $crate::__serve::<$t>(request, out)
                }
            }
            $crate::wasi::http::proxy::export!(__EdgeFetch);
        };
    };
}
