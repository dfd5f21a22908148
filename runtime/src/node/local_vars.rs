//! `edge dev`'s local secrets (`.dev.vars`, `.dev.vars.<env>`, `.env`), read again each time
//! the app loads, so an edited file is served without a restart (as `wrangler dev` does).
//!
//! The files are hidden (dot) files, which the watcher and the fingerprint otherwise leave out;
//! they are looked at by name.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::ConfigError;

/// Parses a secrets file into `KEY`/`VALUE` pairs, or says what is wrong (without quoting a
/// secret).
pub type ReadVars = Arc<dyn Fn(&Path) -> Result<Vec<(String, String)>, String> + Send + Sync>;

/// Where an app's local secrets are, and how they are read.
#[derive(Clone)]
pub struct LocalVars {
    /// In order of preference: the first that exists is used.
    candidates: Vec<PathBuf>,
    read: ReadVars,
}

impl fmt::Debug for LocalVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalVars")
            .field("candidates", &self.candidates)
            .finish()
    }
}

impl LocalVars {
    /// Secrets from the first of `candidates` that exists, parsed by `read`.
    pub fn new(candidates: Vec<PathBuf>, read: ReadVars) -> Self {
        Self { candidates, read }
    }

    /// The file in use now, if any.
    pub fn file(&self) -> Option<&Path> {
        self.candidates
            .iter()
            .map(PathBuf::as_path)
            .find(|p| p.is_file())
    }

    /// The secrets (none when no file exists). A file that does not parse is a config error
    /// of the app: the version before keeps serving.
    pub(super) fn load(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(file) = self.file() else {
            return Ok(Vec::new());
        };
        (self.read)(file).map_err(|message| ConfigError::Parse {
            path: file.to_path_buf(),
            message,
        })
    }

    /// What changes when a candidate file appears, changes or goes, for the app's fingerprint.
    pub(super) fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for path in &self.candidates {
            let meta = std::fs::metadata(path).ok();
            meta.as_ref().map(|m| m.len()).hash(&mut h);
            meta.and_then(|m| m.modified().ok()).hash(&mut h);
        }
        h.finish()
    }

    /// Whether `path` is one of the candidate files.
    pub(super) fn is_candidate(&self, path: &Path) -> bool {
        self.candidates
            .iter()
            .any(|c| c == path || c.file_name() == path.file_name() && same_dir(c, path))
    }
}

/// Whether two paths are in the same folder, one of them possibly canonical.
fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.parent().and_then(|d| std::fs::canonicalize(d).ok());
    canon(a).is_some() && canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> ReadVars {
        Arc::new(|path: &Path| {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            text.lines()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| "not KEY=VALUE".to_owned())
                })
                .collect()
        })
    }

    #[test]
    fn the_first_existing_file_is_read_each_time_and_changes_show_in_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("edge-local-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vars = LocalVars::new(
            vec![dir.join(".dev.vars.staging"), dir.join(".dev.vars")],
            reader(),
        );
        assert_eq!(vars.load().unwrap(), vec![]);
        let empty = vars.fingerprint();
        std::fs::write(dir.join(".dev.vars"), "A=1").unwrap();
        assert_eq!(vars.load().unwrap(), vec![("A".into(), "1".into())]);
        assert_ne!(vars.fingerprint(), empty);
        std::fs::write(dir.join(".dev.vars.staging"), "A=2").unwrap();
        assert_eq!(vars.load().unwrap(), vec![("A".into(), "2".into())]);
        std::fs::write(dir.join(".dev.vars.staging"), "broken").unwrap();
        let err = vars.load().unwrap_err().to_string();
        assert!(
            err.contains(".dev.vars.staging") && err.contains("not KEY=VALUE"),
            "{err}"
        );
        assert!(vars.is_candidate(&dir.join(".dev.vars")));
        assert!(!vars.is_candidate(&dir.join(".edge")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
