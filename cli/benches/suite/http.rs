//! Single HTTP/1.1 requests over a plain `TcpStream`, `Connection: close`: for checks and for
//! timing one request from connect to the last byte of the response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A response: its status and its body as text.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Everything after the header block (the suite's handlers answer with small
    /// `Content-Length` bodies, so this is the body as sent).
    pub body: String,
}

/// Sends one request to `127.0.0.1:port` with `Host: host` and reads the whole response.
pub fn request(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

/// A `GET /` that must answer 200; returns the time from connect to the end of the response.
pub fn timed_get(port: u16, host: &str) -> Duration {
    let start = Instant::now();
    let response = request(port, host, "GET", "/", b"")
        .unwrap_or_else(|e| panic!("GET http://{host} on port {port}: {e}"));
    let elapsed = start.elapsed();
    assert_eq!(
        response.status, 200,
        "GET http://{host} on port {port}: {response:?}"
    );
    elapsed
}

/// `GET /` until a response comes (a server still starting may reset the connection), for
/// at most `timeout`; panics if none does. Returns the response.
pub fn get_when_up(port: u16, host: &str, timeout: Duration) -> Response {
    let start = Instant::now();
    loop {
        match request(port, host, "GET", "/", b"") {
            Ok(response) => return response,
            Err(e) if start.elapsed() > timeout => {
                panic!("no answer on port {port} within {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete response header"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut body = &raw[split + 4..];
    let mut decoded = Vec::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Each chunk: its length in hex, CRLF, the bytes, CRLF; a zero length ends the body.
        loop {
            let line_end = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("truncated chunk"))?;
            let size_text = String::from_utf8_lossy(&body[..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = line_end + 2;
            let chunk = body
                .get(start..start + size)
                .ok_or_else(|| bad("truncated chunk"))?;
            decoded.extend_from_slice(chunk);
            body = body.get(start + size + 2..).unwrap_or_default();
        }
        body = &decoded;
    }
    let body = String::from_utf8_lossy(body).into_owned();
    Ok(Response { status, body })
}
