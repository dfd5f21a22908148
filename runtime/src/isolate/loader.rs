//! Loads a tenant's modules from its app directory, and nowhere else.

use std::path::PathBuf;

use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSource, ModuleSourceCode, ModuleSpecifier, ModuleType, RequestedModuleType,
    ResolutionKind, resolve_import,
};
use deno_error::JsErrorBox;

/// Resolves and loads `file:` modules under one app's root directory. Remote imports, bare
/// specifiers and paths that escape the root are refused with an error naming the specifier.
///
/// An isolate is made before it knows its app (see the warm pool), so the root is set once
/// the app is assigned; until then every load is refused.
pub(crate) struct AppModuleLoader {
    root: std::cell::RefCell<Option<PathBuf>>,
}

impl AppModuleLoader {
    /// A loader with no app yet.
    pub(crate) fn new() -> Self {
        Self {
            root: Default::default(),
        }
    }

    /// Confines loads to `root` from now on.
    pub(crate) fn set_root(&self, root: PathBuf) {
        *self.root.borrow_mut() = Some(root);
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
        if !self
            .root
            .borrow()
            .as_deref()
            .is_some_and(|root| path.starts_with(root))
        {
            return Err(unavailable());
        }
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
        let code = std::fs::read(&path).map_err(|_| unavailable())?;
        Ok(ModuleSource::new(
            module_type,
            ModuleSourceCode::Bytes(code.into_boxed_slice().into()),
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
