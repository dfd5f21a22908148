//! `bare-hyper`: the `hello` scenario's ceiling. A hyper 1 HTTP/1.1 server on a current-thread
//! tokio runtime that answers every request `200 Hello, world!` and does nothing else: no
//! routing, no JavaScript, no limits. What it reaches under `wrk -t1` is about what this load
//! generator can drive on this machine, so a target above it cannot be met by any server.
//!
//! It runs as its own process, like the systems it is compared with: the suite re-executes its
//! own binary with [`FLAG`] as the first argument (see `process::bare_hyper`), and the child
//! prints `listening on http://127.0.0.1:PORT` on stdout.

use std::convert::Infallible;
use std::io::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::TokioIo;

/// The hidden first argument that makes the suite's binary this server instead of the suite.
pub const FLAG: &str = "--bare-hyper-server";

/// The system name it reports under.
pub const SYSTEM: &str = "bare-hyper";

/// The body, the same bytes as `hello.js`'s response.
const BODY: &[u8] = b"Hello, world!";

/// Serves on 127.0.0.1, a free port, until killed; prints the address once listening.
pub fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a current-thread tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, accept_loop());
}

async fn accept_loop() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener address");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}").expect("write to stdout");
    stdout.flush().expect("flush stdout");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = Response::builder()
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from_static(BODY)))
        .expect("a valid response");
    Ok(response)
}
