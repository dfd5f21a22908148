//! The extension scripts, embedded in the binary.
//!
//! deno_core's extension macros name each script by its path on the build machine and read it
//! from there while a snapshot is built (and lazily loaded scripts at every isolate start). The
//! build script embeds all of them; [`embed`] swaps each path for its text, so a binary copied
//! to a machine without the crate sources still starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use deno_core::{Extension, ExtensionFileSource, ExtensionFileSourceCode};

include!(concat!(env!("OUT_DIR"), "/embedded_js.rs"));

/// A script an extension reads from disk that the binary does not hold.
#[derive(Debug, thiserror::Error)]
#[error("extension script {specifier} ({path}) is not embedded in this binary")]
pub struct NotEmbedded {
    /// The module specifier, e.g. `ext:deno_web/06_streams.js`.
    pub specifier: &'static str,
    /// The path deno_core would read.
    pub path: &'static str,
}

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

/// Replaces every script `extensions` would read from disk with the embedded text.
pub(crate) fn embed(extensions: &mut [Extension]) -> Result<(), NotEmbedded> {
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
                    let text = table().get(&normalized).ok_or(NotEmbedded {
                        specifier: file.specifier,
                        path,
                    })?;
                    *file = ExtensionFileSource::new_computed(file.specifier, text.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_script_is_embedded() {
        let mut exts = crate::isolate::snapshot::raw_extensions();
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
        embed(&mut exts).unwrap();
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
