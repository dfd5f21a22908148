//! The servers under test as child processes: started with their address known, their stderr
//! kept for error messages, killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http;

/// How long a server may take to print its address or answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How much of a server's stderr is kept for error messages.
const LOG_TAIL: usize = 16 * 1024;

/// A running server: killed (and reaped) when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory (`VmRSS` in `/proc/PID/status`), in MiB.
    pub fn rss_mib(&self) -> f64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}"));
        kib / 1024.0
    }

    /// The last part of what the server wrote to stderr.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET /` with `Host: host` until the server answers 200; panics with its log if it exits,
    /// answers anything else, or takes longer than the start timeout.
    pub fn wait_up(&mut self, host: &str) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited ({status}) before answering:\n{}", self.log());
            }
            match http::request(self.port, host, "GET", "/", b"") {
                Ok(r) if r.status == 200 => return,
                Ok(r) => panic!(
                    "first request answered {}: {}\n{}",
                    r.status,
                    r.body,
                    self.log()
                ),
                Err(_) if start.elapsed() < START_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!(
                    "server did not answer within {START_TIMEOUT:?}: {e}\n{}",
                    self.log()
                ),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `edge` binary under test: the default build (V8) or the QuickJS one.
#[derive(Clone, Copy, Debug)]
pub struct Edge<'a> {
    /// The system name it reports under: `edge` or `edge-quickjs`.
    pub name: &'static str,
    /// The binary.
    pub bin: &'a Path,
}

impl Edge<'static> {
    /// The `edge` cargo built for this bench (V8, the default engine).
    pub fn v8() -> Self {
        Edge {
            name: "edge",
            bin: Path::new(env!("CARGO_BIN_EXE_edge")),
        }
    }
}

/// Starts `edge serve` on `apps` and returns once it prints its address. Each engine keeps
/// its own snapshot in `cache` (the file name says which).
pub fn edge(edge: Edge<'_>, apps: &Path, data: &Path, cache: &Path) -> Server {
    edge_logging(edge, apps, data, cache, "warn")
}

/// [`edge`] with its log filter set to `filter` (`EDGE_LOG`), in JSON lines.
pub fn edge_logging(
    edge: Edge<'_>,
    apps: &Path,
    data: &Path,
    cache: &Path,
    filter: &str,
) -> Server {
    let mut command = Command::new(edge.bin);
    command
        .args(["serve", "--log-format", "json", "--apps"])
        .arg(apps)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("EDGE_CACHE_DIR", cache)
        .env("EDGE_LOG", filter);
    // edge prints `listening on http://127.0.0.1:PORT` on stdout.
    spawn_announcing(command, edge.name, Stream::Stdout, "listening on")
}

/// Starts `deno serve` on `main` and returns once it prints its address.
pub fn deno(bin: &Path, main: &Path, flags: &[&str], env: &[(&str, &OsStr)]) -> Server {
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .args(flags)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .arg(main)
        .env("DENO_NO_UPDATE_CHECK", "1")
        .envs(env.iter().map(|(k, v)| (*k, *v)));
    // deno serve prints `Listening on http://127.0.0.1:PORT/` on stderr.
    spawn_announcing(command, "deno", Stream::Stderr, "Listening on")
}

/// Starts the `bare-hyper` reference server (`bare.rs`): this suite's own binary run again with
/// its hidden flag, in a process of its own. Returns once it prints its address.
pub fn bare_hyper() -> Server {
    let exe = std::env::current_exe().expect("the suite's own binary");
    let mut command = Command::new(exe);
    command.arg(crate::bare::FLAG);
    // It prints `listening on http://127.0.0.1:PORT` on stdout.
    spawn_announcing(command, crate::bare::SYSTEM, Stream::Stdout, "listening on")
}

/// Starts `wasmtime serve` on `component` (with WASI's `cli` interfaces, which a Rust guest's
/// standard library imports) on 127.0.0.1, a free port, and returns once it prints its address.
pub fn wasmtime_serve(bin: &Path, component: &Path) -> Server {
    let mut command = Command::new(bin);
    command
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "-S",
            "cli=y",
            "--no-logging-prefix",
        ])
        .arg(component);
    // wasmtime serve prints `Serving HTTP on http://127.0.0.1:PORT/` on stderr.
    spawn_announcing(command, "wasmtime", Stream::Stderr, "Serving HTTP on")
}

/// Starts `workerd serve config` with its `http` socket on a listener bound here to
/// 127.0.0.1:0 and handed over as the child's stdin (`--socket-fd http=0`), so no port is ever
/// guessed. Returns at once: the listener queues connections until workerd accepts them.
pub fn workerd(bin: &Path, config: &Path) -> Server {
    workerd_with(bin, config, &[])
}

/// [`workerd`] with more flags (`--watch`).
pub fn workerd_with(bin: &Path, config: &Path, flags: &[&str]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("listener address").port();
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(config)
        .args(["--socket-fd", "http=0"])
        .args(flags)
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let log = Arc::new(Mutex::new(String::new()));
    drain(child.stderr.take().unwrap(), log.clone(), None);
    Server { child, port, log }
}

/// Which of a child's output streams carries its address.
enum Stream {
    Stdout,
    Stderr,
}

fn spawn_announcing(
    mut command: Command,
    name: &str,
    stream: Stream,
    marker: &'static str,
) -> Server {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let log = Arc::new(Mutex::new(String::new()));
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let ports = Some((marker, tx));
    match stream {
        Stream::Stdout => {
            drain(out, log.clone(), ports);
            drain(err, log.clone(), None);
        }
        Stream::Stderr => {
            drain(out, log.clone(), None);
            drain(err, log.clone(), ports);
        }
    }
    let port = rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name} did not print its address:\n{}", log.lock().unwrap())
    });
    Server { child, port, log }
}

/// Reads `stream` to its end on a thread, keeping its tail in `log`; the first line containing
/// the marker and a `http://HOST:PORT` address sends that port.
fn drain(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    mut announce: Option<(&'static str, mpsc::Sender<u16>)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some((marker, tx)) = &announce
                && line.contains(marker)
                && let Some(port) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .and_then(|url| url.trim_end_matches('/').rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
                announce = None;
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
            if log.len() > LOG_TAIL {
                let cut = log.len() - LOG_TAIL / 2;
                let cut = (cut..log.len())
                    .find(|&i| log.is_char_boundary(i))
                    .unwrap_or(0);
                log.drain(..cut);
            }
        }
    });
}
