//! Where a new connection's first request goes: its head is read (not answered) so the
//! connection can be handed to the thread of the isolate that will answer it.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of a first request's head is read to find its Host; a longer head is served
/// where it was accepted.
pub(crate) const MAX_HEAD: usize = 16 << 10;

/// What the start of a connection says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FirstRequest {
    /// An HTTP/1 request for this host (port included, as sent) and path.
    Http1 {
        /// The `Host` header, or the authority of an absolute-form target.
        host: String,
        /// The target's path, without the query.
        path: String,
    },
    /// Not an HTTP/1 head that says where it goes (HTTP/2, a malformed or overlong head, no
    /// host): served where it was accepted, which answers it properly.
    Other,
    /// The client closed the connection or sent nothing in time.
    Gone,
}

/// Reads from `io` into `buf` until the first request's head is complete, and says where it
/// goes. Whatever was read stays in `buf`, to be replayed to the HTTP server.
pub(crate) async fn read(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    timeout: Duration,
) -> FirstRequest {
    let reading = async {
        loop {
            match parse(buf) {
                Some(found) => return found,
                None if buf.len() >= MAX_HEAD => return FirstRequest::Other,
                None => {}
            }
            buf.reserve(4096);
            match io.read_buf(buf).await {
                Ok(0) | Err(_) if buf.is_empty() => return FirstRequest::Gone,
                // Closed mid-head: let the HTTP server answer what there is.
                Ok(0) | Err(_) => return FirstRequest::Other,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or(FirstRequest::Gone)
}

/// The first request in `head`, or `None` if its head is not complete yet.
fn parse(head: &[u8]) -> Option<FirstRequest> {
    if head.is_empty() {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(_)) => Some(locate(&req).unwrap_or(FirstRequest::Other)),
        // HTTP/2's preface, too many headers, bad syntax.
        Err(_) => Some(FirstRequest::Other),
    }
}

fn locate(req: &httparse::Request<'_, '_>) -> Option<FirstRequest> {
    let target = req.path?;
    let uri: http::Uri = target.parse().ok()?;
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))?;
    Some(FirstRequest::Http1 {
        host,
        path: uri.path().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http1(host: &str, path: &str) -> FirstRequest {
        FirstRequest::Http1 {
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn finds_host_and_path() {
        let head = b"GET /a/b?x=1 HTTP/1.1\r\nHost: app.test:8080\r\nAccept: */*\r\n\r\n";
        assert_eq!(parse(head), Some(http1("app.test:8080", "/a/b")));
        let absolute = b"GET http://other.test/p HTTP/1.1\r\n\r\n";
        assert_eq!(parse(absolute), Some(http1("other.test", "/p")));
    }

    #[test]
    fn waits_for_the_whole_head() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a"), None);
    }

    #[test]
    fn anything_else_is_served_where_accepted() {
        assert_eq!(
            parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Some(FirstRequest::Other)
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Some(FirstRequest::Other));
        assert_eq!(
            parse(b"\x16\x03\x01garbage\r\n\r\n"),
            Some(FirstRequest::Other)
        );
    }

    #[tokio::test]
    async fn reads_until_the_head_is_complete() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for part in [
                &b"GET /x HTTP/1.1\r\n"[..],
                b"Host: a.test\r\n",
                b"\r\nbody",
            ] {
                client.write_all(part).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut buf = BytesMut::new();
        assert_eq!(
            read(&mut server, &mut buf, Duration::from_secs(60)).await,
            http1("a.test", "/x")
        );
        writer.await.unwrap();
        assert!(buf.starts_with(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    }

    #[tokio::test]
    async fn a_silent_close_is_gone() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let mut buf = BytesMut::new();
        assert_eq!(
            read(&mut server, &mut buf, Duration::from_secs(60)).await,
            FirstRequest::Gone
        );
    }
}
