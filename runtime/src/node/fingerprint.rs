//! Whether an app folder changed: a hash of the path, size and modification time of every file
//! in it (hidden folders such as `.edge/`, where `edge dev` keeps state, left out). Cheap
//! enough to take for every app on every reload: no file is read.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

/// Files looked at, at most; past it the folder counts as changed every time.
const MAX_FILES: usize = 100_000;

/// The fingerprint of `folder`.
pub(super) fn of_folder(folder: &Path) -> u64 {
    let mut files = Vec::new();
    let complete = collect(folder, folder, &mut files);
    files.sort();
    let mut h = DefaultHasher::new();
    files.hash(&mut h);
    if !complete {
        // Too many files to tell: a fingerprint no other call gives.
        std::time::SystemTime::now().hash(&mut h);
    }
    h.finish()
}

/// (path relative to the app folder, size, modified) of each file under `dir`; false if it
/// stopped at [`MAX_FILES`].
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, u64, u128)>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if !collect(root, &path, out) {
                return false;
            }
        } else {
            if out.len() == MAX_FILES {
                return false;
            }
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), meta.len(), modified));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_a_file_and_not_with_hidden_state() {
        let dir = std::env::temp_dir().join(format!("edge-fp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".edge")).unwrap();
        std::fs::write(dir.join("index.js"), "a").unwrap();
        let first = of_folder(&dir);
        assert_eq!(first, of_folder(&dir));
        std::fs::write(dir.join(".edge/kv.redb"), "state").unwrap();
        assert_eq!(
            first,
            of_folder(&dir),
            "hidden state changed the fingerprint"
        );
        std::fs::write(dir.join("index.js"), "ab").unwrap();
        assert_ne!(first, of_folder(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
