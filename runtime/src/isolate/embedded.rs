//! The extension scripts, embedded in the binary.
//!
//! deno_core's extension macros name each script by its path on the build machine and read it
//! from there while a snapshot is built (and lazily loaded scripts at every isolate start). The
//! build script embeds all of them; [`embed`] swaps each path for its text, so a binary copied
//! to a machine without the crate sources still starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, OnceLock};

use deno_core::{Extension, ExtensionFileSource, ExtensionFileSourceCode};

include!(concat!(env!("OUT_DIR"), "/embedded_js.rs"));

/// The embedded scripts by normalized path, shared by every isolate.
fn table() -> &'static HashMap<PathBuf, Arc<str>> {
    static TABLE: OnceLock<HashMap<PathBuf, Arc<str>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        EMBEDDED_JS
            .iter()
            .map(|(path, text)| (PathBuf::from(path), Arc::from(*text)))
            .collect()
    })
}

/// The text of the script at `path` (as an extension names it): the embedded copy, else (a
/// binary that could not embed it) the file on disk.
pub(crate) fn text(path: &str) -> Result<Arc<str>, String> {
    let normalized: PathBuf = Path::new(path).components().collect();
    if let Some(text) = table().get(&normalized) {
        return Ok(text.clone());
    }
    std::fs::read_to_string(path)
        .map(Arc::from)
        .map_err(|e| format!("not embedded in this binary, and cannot be read: {e}"))
}

/// Replaces every script `extensions` would read from disk with the embedded text. A script
/// the binary lacks (the build could not embed it; the build warned) is left to be read from
/// its path, which works on the machine that built the binary.
pub(crate) fn embed(extensions: &mut [Extension]) {
    for ext in extensions {
        for files in [
            &mut ext.js_files,
            &mut ext.esm_files,
            &mut ext.lazy_loaded_esm_files,
            &mut ext.lazy_loaded_js_files,
        ] {
            if files.iter().all(ExtensionFileSource::is_runtime_loadable) {
                continue;
            }
            for file in files.to_mut() {
                #[allow(deprecated, reason = "the variant deno_core's macros still produce")]
                if let ExtensionFileSourceCode::LoadedFromFsDuringSnapshot(path) = file.code {
                    let normalized: PathBuf = Path::new(path).components().collect();
                    match table().get(&normalized) {
                        Some(text) => {
                            *file = ExtensionFileSource::new_computed(file.specifier, text.clone());
                        }
                        None => {
                            static WARNED: Once = Once::new();
                            WARNED.call_once(|| {
                                tracing::warn!(
                                    specifier = file.specifier,
                                    path,
                                    "extension scripts not embedded in this binary; reading them \
                                     from disk (this binary cannot be copied to another machine)"
                                );
                            });
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_script_is_embedded() {
        let mut exts = crate::isolate::snapshot::raw_extensions(&Default::default());
        let from_disk = exts
            .iter()
            .flat_map(|e| {
                e.js_files
                    .iter()
                    .chain(e.esm_files.iter())
                    .chain(e.lazy_loaded_esm_files.iter())
                    .chain(e.lazy_loaded_js_files.iter())
            })
            .filter(|f| !f.is_runtime_loadable())
            .count();
        assert!(from_disk > 20, "expected deno_core to name scripts by path");
        embed(&mut exts);
        for ext in &exts {
            for file in ext.esm_files.iter().chain(ext.js_files.iter()) {
                assert!(
                    file.is_runtime_loadable(),
                    "{} still read from disk",
                    file.specifier
                );
                let text = file.load().unwrap();
                assert!(!text.as_bytes().is_empty(), "{} is empty", file.specifier);
            }
            for file in ext
                .lazy_loaded_esm_files
                .iter()
                .chain(ext.lazy_loaded_js_files.iter())
            {
                assert!(
                    file.is_runtime_loadable(),
                    "{} still read from disk",
                    file.specifier
                );
            }
        }
    }
}
