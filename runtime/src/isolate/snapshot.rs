//! The startup snapshot: the web APIs and the host module, evaluated once and restored into
//! every isolate (about 12 ms instead of about 73 ms to bootstrap on the quickjs backend).
//!
//! The snapshot is made at the first start of a given `edge` binary, on a thread of its own
//! (see the engine note in [`super`]), and cached on disk keyed by the binary's identity, so
//! later starts only read it. Building it in a build script would compile the engine twice
//! and would not work for the `v8` type-check build, which has no engine to run. The scripts
//! it evaluates come from the binary itself ([`super::embedded`]), so a copied binary works.

use std::path::{Path, PathBuf};

use deno_core::{JsRuntimeForSnapshot, RuntimeOptions};
use edge_binding::Registry;

use super::edge_host;
use super::embedded::embed;

/// The snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The thread that builds the snapshot could not start or panicked.
    #[error("snapshot thread failed: {0}")]
    Thread(String),
    /// Running the request path once in the snapshot (to keep its compiled code) failed.
    #[error("warming up the startup snapshot failed: {0}")]
    WarmUp(String),
}

/// The extensions of every isolate, in order, without per-isolate state, as their crates make
/// them (scripts named by their paths on the build machine): the web APIs, the bindings of
/// `bindings`, the host.
pub(crate) fn raw_extensions(bindings: &Registry) -> Vec<deno_core::Extension> {
    let mut exts = edge_web::extensions();
    exts.extend(edge_nodejs::extensions());
    exts.extend(bindings.extensions());
    exts.push(edge_host::init(None));
    exts
}

/// The extensions of every isolate, their scripts taken from the binary. A runtime restored
/// from the startup snapshot must be given these, in this order.
pub fn extensions(bindings: &Registry) -> Vec<deno_core::Extension> {
    let mut exts = raw_extensions(bindings);
    // Deno's Node modules first: they need their file names (TypeScript is stripped). A binary
    // whose own scripts do not parse cannot run at all (`every_prepared_file_parses`).
    edge_nodejs::prepare(&mut exts, super::embedded::text)
        .expect("the Node.js extension sources are valid");
    embed(&mut exts);
    exts
}

/// Builds a fresh snapshot on a dedicated thread, with the extensions of `bindings`.
pub fn create(bindings: &Registry) -> Result<Vec<u8>, SnapshotError> {
    let bindings = bindings.clone();
    // Set up for serving, not for snapshotting: see `engine`.
    super::engine::init();
    std::thread::Builder::new()
        .name("edge-snapshot".into())
        .stack_size(8 << 20)
        .spawn(move || -> Result<Vec<u8>, SnapshotError> {
            // The engine posts delayed tasks (GC) to the event loop of the thread that made it.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SnapshotError::Thread(format!("no event loop: {e}")))?;
            let _context = rt.enter();
            let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions {
                extensions: extensions(&bindings),
                ..Default::default()
            });
            // Compile the request path now, so the snapshot holds its code (host.js `warmUp`).
            runtime
                .execute_script(
                    "ext:edge_host/warm_up.js",
                    "(() => { const k = Symbol.for('edge.warmup'); const warmUp = globalThis[k]; delete globalThis[k]; warmUp(); })()",
                )
                .map_err(|e| SnapshotError::WarmUp(e.to_string()))?;
            Ok(runtime.snapshot().into_vec())
        })
        .map_err(|e| SnapshotError::Thread(e.to_string()))?
        .join()
        .map_err(|_| SnapshotError::Thread("panicked while building the snapshot".into()))?
}

/// The cache directory: `$EDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/edge`, else `~/.cache/edge`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EDGE_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(Path::new(&dir).join("edge"));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").join("edge"))
}

/// The cache file name for this binary and these bindings: it changes whenever either does.
fn cache_key(bindings: &Registry) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(exe).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let engine = if cfg!(feature = "v8") {
        "v8"
    } else {
        "quickjs"
    };
    let kinds: Vec<&str> = bindings.kinds().collect();
    Some(format!(
        "snapshot-{}-{engine}-{:x}-{mtime:x}-{}-{}.bin",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        env!("EDGE_JS_FINGERPRINT"),
        kinds.join("+"),
    ))
}

/// The snapshot for this binary: read from `cache_dir` when there, else made and written
/// there (atomically, so concurrent starts never read a partial file). Lives for the process.
pub fn load_or_create(
    cache_dir: Option<&Path>,
    bindings: &Registry,
) -> Result<&'static [u8], SnapshotError> {
    let path = cache_dir.zip(cache_key(bindings)).map(|(d, k)| d.join(k));
    if let Some(path) = &path
        && let Ok(bytes) = std::fs::read(path)
        && !bytes.is_empty()
    {
        return Ok(Box::leak(bytes.into_boxed_slice()));
    }
    let started = std::time::Instant::now();
    let bytes = create(bindings)?;
    tracing::debug!(bytes = bytes.len(), elapsed = ?started.elapsed(), "created startup snapshot");
    if let Some(path) = &path
        && let Err(e) = write_atomic(path, &bytes)
    {
        tracing::debug!(
            "could not cache the startup snapshot at {}: {e}",
            path.display()
        );
    }
    Ok(Box::leak(bytes.into_boxed_slice()))
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
