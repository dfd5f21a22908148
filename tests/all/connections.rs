//! Connections are handed to the thread of the isolate their first request is for, and
//! outlive that isolate: a connection whose isolate was discarded (a limit breach) or retired
//! keeps serving, its requests crossing to the tenants' current isolates, until it has been
//! idle for a moment; then the server closes it.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{Edge, fixture, scratch};

/// One keep-alive HTTP/1.1 connection, spoken by hand so that every request provably goes
/// over the same socket.
struct Conn(BufReader<TcpStream>);

impl Conn {
    async fn open(edge: &Edge) -> Self {
        Self(BufReader::new(
            TcpStream::connect(("127.0.0.1", edge.port)).await.unwrap(),
        ))
    }

    /// `GET /` for `host`: the status and the `edge-error` header ("" when none).
    async fn get(&mut self, host: &str) -> (u16, String) {
        let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\n\r\n");
        self.0.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let (mut length, mut error) = (0usize, String::new());
        loop {
            line.clear();
            self.0.read_line(&mut line).await.unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "edge-error" => error = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).await.unwrap();
        (status, error)
    }

    /// Whether the server has closed the connection.
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.0.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

#[tokio::test]
async fn a_connection_outlives_its_isolate_then_closes_when_idle() {
    let edge = Edge::serve_in(&fixture("hostile"), &scratch("conn"), &[], &[]);
    let mut conn = Conn::open(&edge).await;
    // The connection goes to spin's isolate thread, and spin's isolate is discarded.
    assert_eq!(conn.get("spin.test").await, (503, "cpu-limit".into()));
    // The connection still serves, for any tenant.
    for _ in 0..3 {
        assert_eq!(conn.get("good.test").await, (200, String::new()));
    }
    assert_eq!(conn.get("spin.test").await, (503, "cpu-limit".into()));
    // Idle past the linger time, it is closed; a new connection is served as usual.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(conn.closed().await, "the idle connection stayed open");
    let mut fresh = Conn::open(&edge).await;
    assert_eq!(fresh.get("good.test").await, (200, String::new()));
}
