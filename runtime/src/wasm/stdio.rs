//! A guest's stdout and stderr: each line becomes a console line of the app's (target
//! `edge::console`, tagged with the tenant, info for stdout and error for stderr), within the
//! same budget as JavaScript `console.*`: cut when too long, dropped past the rate. The budget
//! belongs to the app, so a burst of short-lived instances cannot reset it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use edge_web::ConsoleBudget;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Where one stream of an app's guest output goes.
#[derive(Clone)]
pub(super) struct ConsoleStream {
    tenant: Arc<str>,
    level: u32,
    budget: Arc<Mutex<ConsoleBudget>>,
}

impl ConsoleStream {
    /// Stdout (`level` 1) or stderr (`level` 3) of `tenant`, within `budget`.
    pub(super) fn new(tenant: Arc<str>, level: u32, budget: Arc<Mutex<ConsoleBudget>>) -> Self {
        Self {
            tenant,
            level,
            budget,
        }
    }
}

impl IsTerminal for ConsoleStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ConsoleStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.clone()))
    }
}

/// Collects bytes into lines; a partial line is written when it grows past the line limit
/// or the writer is dropped.
struct LineWriter {
    out: ConsoleStream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn new(out: ConsoleStream) -> Self {
        Self {
            out,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&bytes[..nl]);
            self.emit();
            bytes = &bytes[nl + 1..];
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > edge_web::CONSOLE_LINE_BYTES {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let mut budget = self.out.budget.lock().unwrap_or_else(|e| e.into_inner());
        edge_web::console_line(&self.out.tenant, &mut budget, &line, self.out.level);
        self.pending.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
