//! The files one version of an app loads, read once and shared by all its isolates, and the
//! bound on how much of them an app may have.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::resolve::AppResolver;

/// The files one version of an app loaded, as first read: the version's later isolates (a
/// second one, one restarted after going idle or breaking a limit) run the same code even when
/// the files on disk have changed since, or are being written (a hot reload makes a new version
/// for that). Forgotten when a load fails, so a retry reads the files again.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    files: Mutex<Files>,
    /// The files read for this version so far and their bytes (see [`MAX_SOURCE_BYTES`]),
    /// each file counted once (a CommonJS file is read as its facade and as its view).
    read: Mutex<(HashSet<PathBuf>, usize)>,
    /// Whether each `.js`/`.cjs` file a node-mode importer reached is CommonJS.
    pub(super) commonjs: Mutex<HashMap<PathBuf, bool>>,
    /// How this version's imports find their files (its lookups cached for the version).
    pub(super) resolver: AppResolver,
}

/// The most bytes of files one version of an app may load: reading, transpiling and compiling
/// them happens before its code runs, outside its CPU limit, so its size is what bounds it
/// (Workers allows a script of 10 MB compressed).
pub(crate) const MAX_SOURCE_BYTES: usize = 64 << 20;

/// The bytes of `path` if it is a regular file of at most [`MAX_SOURCE_BYTES`] (checked before
/// it is opened: a FIFO or a device would never end), `None` otherwise.
pub(super) fn read_regular(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES as u64 {
        return None;
    }
    let mut raw = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    std::fs::File::open(path)
        .ok()?
        .take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .ok()?;
    (raw.len() <= MAX_SOURCE_BYTES).then_some(raw)
}

/// Module code by file and by what it was imported as.
type Files = HashMap<(PathBuf, &'static str), Arc<[u8]>>;

impl Sources {
    /// `path`'s module code when imported `as_what` (a module, or JSON, text or bytes): as
    /// first read (and made ready by `prepare`) for this version, else read and prepared now.
    /// `Err(None)`: the file cannot be read.
    pub(super) fn get(
        &self,
        path: &Path,
        as_what: &'static str,
        prepare: impl FnOnce(&[u8]) -> Result<Arc<[u8]>, String>,
    ) -> Result<Arc<[u8]>, Option<String>> {
        let key = (path.to_path_buf(), as_what);
        if let Some(code) = self.lock().get(&key) {
            return Ok(code.clone());
        }
        // Sized before it is read: a huge file is refused, not read into memory; a device or a
        // FIFO is not a module.
        let meta = std::fs::metadata(path).map_err(|_| None)?;
        if !meta.is_file() {
            return Err(None);
        }
        let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        let read = {
            let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
            if read.0.insert(path.to_path_buf()) {
                read.1 = read.1.saturating_add(size);
            }
            read.1
        };
        if read > MAX_SOURCE_BYTES {
            return Err(Some(format!(
                "{}: the app's modules come to more than {} MiB; edge loads at most that much per app",
                path.display(),
                MAX_SOURCE_BYTES >> 20
            )));
        }
        let raw = read_regular(path).ok_or(None)?;
        let code = prepare(&raw).map_err(Some)?;
        Ok(self.lock().entry(key).or_insert(code).clone())
    }

    /// Forgets every file (the next isolate reads them again).
    pub(crate) fn clear(&self) {
        self.lock().clear();
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
        self.commonjs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }
}
