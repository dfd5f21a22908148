//! Loads a tenant's modules from its app directory, and nowhere else; every isolate of one
//! version of the app gets the same files ([`Sources`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSource, ModuleSourceCode, ModuleSpecifier, ModuleType, RequestedModuleType,
    ResolutionKind, resolve_import,
};
use deno_error::JsErrorBox;

/// The files one version of an app loaded, as first read: the version's later isolates (a
/// second one, one restarted after going idle or breaking a limit) run the same code even when
/// the files on disk have changed since, or are being written (a hot reload makes a new version
/// for that). Forgotten when a load fails, so a retry reads the files again.
#[derive(Debug, Default)]
pub(crate) struct Sources(Mutex<HashMap<PathBuf, Arc<[u8]>>>);

impl Sources {
    /// `path`'s contents: as first read for this version, else read now.
    fn read(&self, path: &Path) -> std::io::Result<Arc<[u8]>> {
        if let Some(code) = self.lock().get(path) {
            return Ok(code.clone());
        }
        let code: Arc<[u8]> = std::fs::read(path)?.into();
        Ok(self
            .lock()
            .entry(path.to_path_buf())
            .or_insert(code)
            .clone())
    }

    /// Forgets every file (the next isolate reads them again).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Arc<[u8]>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Resolves and loads `file:` modules under one app's root directory. Remote imports, bare
/// specifiers and paths that escape the root are refused with an error naming the specifier.
///
/// An isolate is made before it knows its app (see the warm pool), so the root is set once
/// the app is assigned; until then every load is refused.
pub(crate) struct AppModuleLoader {
    root: std::cell::RefCell<Option<(PathBuf, Arc<Sources>)>>,
}

impl AppModuleLoader {
    /// A loader with no app yet.
    pub(crate) fn new() -> Self {
        Self {
            root: Default::default(),
        }
    }

    /// Confines loads to `root` from now on, reading files through the version's `sources`.
    pub(crate) fn set_root(&self, root: PathBuf, sources: Arc<Sources>) {
        *self.root.borrow_mut() = Some((root, sources));
    }

    fn load_sync(
        &self,
        specifier: &ModuleSpecifier,
        requested: &RequestedModuleType,
    ) -> Result<ModuleSource, ModuleLoaderError> {
        let path = specifier.to_file_path().map_err(|()| {
            JsErrorBox::type_error(format!("cannot import {specifier}: not a file"))
        })?;
        // A file that is missing and one outside the app directory get the same answer, so an
        // import cannot tell the app which files exist on the host.
        let unavailable = || {
            JsErrorBox::type_error(format!(
                "cannot import {specifier}: no such file in the app directory"
            ))
        };
        let path = path.canonicalize().map_err(|_| unavailable())?;
        let sources = match &*self.root.borrow() {
            Some((root, sources)) if path.starts_with(root) => sources.clone(),
            _ => return Err(unavailable()),
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let module_type = match (requested, ext.as_str()) {
            (RequestedModuleType::Json, "json") => ModuleType::Json,
            (RequestedModuleType::Json, _) => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier} as JSON: not a .json file"
                )));
            }
            (_, "json") => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier}: JSON modules need `with {{ type: \"json\" }}`"
                )));
            }
            (RequestedModuleType::Text, _) => ModuleType::Text,
            (RequestedModuleType::Bytes, _) => ModuleType::Bytes,
            (_, "wasm") => ModuleType::Wasm,
            (_, "js" | "mjs") => ModuleType::JavaScript,
            _ => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier}: unsupported file type (expected .js, .mjs, .json or .wasm)"
                )));
            }
        };
        let code = sources.read(&path).map_err(|_| unavailable())?;
        Ok(ModuleSource::new(
            module_type,
            ModuleSourceCode::Bytes(Box::<[u8]>::from(&*code).into()),
            specifier,
            None,
        ))
    }
}

impl ModuleLoader for AppModuleLoader {
    fn resolve(
        &self,
        specifier: &str,
        referrer: &str,
        _kind: ResolutionKind,
    ) -> ModuleResolveResponse {
        let resolved = resolve_import(specifier, referrer).map_err(JsErrorBox::from_err)?;
        if resolved.scheme() != "file" {
            return Err(JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {referrer}: only files inside the app directory can be imported"
            )));
        }
        Ok(resolved)
    }

    fn load(
        &self,
        specifier: &ModuleSpecifier,
        _referrer: Option<&ModuleLoadReferrer>,
        options: ModuleLoadOptions,
    ) -> ModuleLoadResponse {
        ModuleLoadResponse::Sync(self.load_sync(specifier, &options.requested_module_type))
    }
}
