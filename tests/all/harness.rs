//! Starting the `edge` binary and talking to it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `edge` binary cargo built for these tests.
pub fn edge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_edge"))
}

/// `edge ARGS…` as a command, sharing the tests' startup-snapshot cache.
pub fn edge_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(edge_bin());
    cmd.args(args).env("EDGE_CACHE_DIR", cache_dir());
    cmd
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
        .canonicalize()
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A fresh scratch directory under cargo's target tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Where every test process shares the startup-snapshot cache.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-cache")
}

/// A running `edge` process; killed when dropped.
pub struct Edge {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The port it listens on.
    pub port: u16,
    /// `127.0.0.1:PORT` of its HTTPS listener, if it has one.
    pub https: Option<String>,
    stderr: Arc<Mutex<String>>,
}

impl Edge {
    /// Runs `edge ARGS…` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Edge::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(edge_bin());
        cmd.args(args)
            .env("EDGE_CACHE_DIR", cache_dir())
            .env("EDGE_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::start_command(cmd, &format!("{args:?}"))
    }

    /// Runs `cmd` (which runs `edge`, perhaps through a wrapper) and waits for its
    /// `listening on` line; `args` describes it in failures.
    pub fn start_command(mut cmd: Command, args: &str) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn edge");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut https = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on https://") {
                    https = Some(addr.to_string());
                }
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send((addr.to_string(), https.take()));
                }
            }
        });
        // The first start of a new binary builds the startup snapshot: allow for it.
        let (addr, https) = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "edge {args} did not print its listening line; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child,
            base: format!("http://{addr}"),
            port,
            https,
            stderr,
        }
    }

    /// `edge dev <fixture> --port 0`.
    pub fn dev(fixture_name: &str) -> Self {
        Self::dev_with(fixture_name, &[])
    }

    /// `edge dev <fixture> --port 0` with more arguments.
    pub fn dev_with(fixture_name: &str, extra: &[&str]) -> Self {
        Self::dev_dir(&fixture(fixture_name), extra)
    }

    /// `edge dev <dir> --port 0 --log-format json` with more arguments.
    pub fn dev_dir(dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "dev",
            dir.to_str().unwrap(),
            "--port",
            "0",
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// `edge serve --apps <dir> --listen 127.0.0.1:0` with a scratch data dir.
    pub fn serve(apps: &Path, extra: &[&str]) -> Self {
        Self::serve_in(apps, &scratch("data"), extra, &[])
    }

    /// `edge serve` keeping its state in `data`, with extra arguments and environment.
    pub fn serve_in(apps: &Path, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec![
            "serve",
            "--apps",
            apps.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_with_env(&refs, env)
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for edge")
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the process wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The JSON log events written so far (the process must run with `--log-format json`).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a JSON log event whose message contains `needle`, and returns it.
    pub fn wait_for_event(&self, needle: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
            {
                return e;
            }
            if Instant::now() > deadline {
                panic!("no log event mentions {needle:?}; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with no connection reuse surprises and a generous timeout.
pub fn client() -> reqwest::Client {
    // The tests' client can speak TLS (tls.rs); both of rustls's providers are compiled in,
    // so one is chosen before a client is made.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .unwrap()
}

/// Resident set size of a process, in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak resident set size of a process, in KiB (Linux).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// GETs `url`, with a Host header when `host` is given.
async fn get(c: &reqwest::Client, url: &str, host: Option<&str>) -> reqwest::Response {
    let mut req = c.get(url);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GETs `url` and parses the JSON body.
pub async fn get_json(c: &reqwest::Client, url: &str, host: Option<&str>) -> serde_json::Value {
    let res = get(c, url, host).await;
    res.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"))
}

/// GETs `url` and returns the body as text.
pub async fn get_text(c: &reqwest::Client, url: &str, host: Option<&str>) -> String {
    let res = get(c, url, host).await;
    res.text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// CPU time (user plus system) a process has used so far (Linux).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Asks `edge` for each route of `expect["routes"]` (a fixture's `expect.json`: what `wrangler
/// dev` answered on the same fixture) and returns how each answer that differs differed. A
/// route whose expected answer is a string is compared as text, any other as JSON.
pub async fn differences_from(edge: &Edge, expect: &serde_json::Value) -> Vec<String> {
    let c = client();
    let mut failures = Vec::new();
    for (route, want) in expect["routes"]
        .as_object()
        .expect("expect.json has routes")
    {
        let res = c.get(edge.url(route)).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let got = match want {
            serde_json::Value::String(_) => serde_json::Value::String(text),
            _ => serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        };
        if !status.is_success() || &got != want {
            failures.push(format!("{route}: {status}\n  want {want}\n  got  {got}"));
        }
    }
    failures
}

/// The JSON of a fixture's `expect.json`.
pub fn expected(fixture_name: &str) -> serde_json::Value {
    let path = fixture(fixture_name).join("expect.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
