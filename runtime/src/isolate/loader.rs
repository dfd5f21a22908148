//! Loads a tenant's modules from its app directory, and nowhere else; every isolate of one
//! version of the app gets the same files ([`Sources`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use deno_ast::MediaType;
use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSource, ModuleSourceCode, ModuleSpecifier, ModuleType, RequestedModuleType,
    ResolutionKind, resolve_import,
};
use deno_error::JsErrorBox;

use super::resolve::{AppResolver, NotFound};
use super::{rules, transpile};

/// What a file becomes before the engine sees it.
#[derive(Clone, Copy)]
enum Kind {
    /// Its bytes, as the import's type asked (`with { type: "json" | "text" | "bytes" }`).
    AsIs,
    /// A JavaScript module made by the rule for its extension (see [`rules`]).
    Rule(rules::Rule),
}

/// The files one version of an app loaded, as first read: the version's later isolates (a
/// second one, one restarted after going idle or breaking a limit) run the same code even when
/// the files on disk have changed since, or are being written (a hot reload makes a new version
/// for that). Forgotten when a load fails, so a retry reads the files again.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    files: Mutex<Files>,
    /// How this version's imports find their files (its lookups cached for the version).
    resolver: AppResolver,
}

/// Module code by file and by what it was imported as.
type Files = HashMap<(PathBuf, &'static str), Arc<[u8]>>;

impl Sources {
    /// `path`'s module code when imported `as_what` (a module, or JSON, text or bytes): as
    /// first read (and made ready by `prepare`) for this version, else read and prepared now.
    /// `Err(None)`: the file cannot be read.
    fn get(
        &self,
        path: &Path,
        as_what: &'static str,
        prepare: impl FnOnce(&[u8]) -> Result<Arc<[u8]>, String>,
    ) -> Result<Arc<[u8]>, Option<String>> {
        let key = (path.to_path_buf(), as_what);
        if let Some(code) = self.lock().get(&key) {
            return Ok(code.clone());
        }
        let raw = std::fs::read(path).map_err(|_| None)?;
        let code = prepare(&raw).map_err(Some)?;
        Ok(self.lock().entry(key).or_insert(code).clone())
    }

    /// Forgets every file (the next isolate reads them again).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
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
        let media_type = MediaType::from_path(&path);
        let (module_type, kind) = match (requested, ext.as_str()) {
            (RequestedModuleType::Json, "json") => (ModuleType::Json, Kind::AsIs),
            (RequestedModuleType::Json, _) => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier} as JSON: not a .json file"
                )));
            }
            (RequestedModuleType::Text, _) => (ModuleType::Text, Kind::AsIs),
            (RequestedModuleType::Bytes, _) => (ModuleType::Bytes, Kind::AsIs),
            (RequestedModuleType::None, _) => match rules::rule_for(&ext) {
                Some(rule) => (ModuleType::JavaScript, Kind::Rule(rule)),
                None => {
                    return Err(JsErrorBox::type_error(format!(
                        "cannot import {specifier}: unsupported file type (expected {})",
                        rules::SUPPORTED
                    )));
                }
            },
            (RequestedModuleType::Other(ty), _) => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier} with type {ty:?}: the types are \"json\", \"text\" and \"bytes\""
                )));
            }
        };
        let as_what = match module_type {
            ModuleType::Json => "json",
            ModuleType::Text => "text",
            ModuleType::Bytes => "bytes",
            _ => "module",
        };
        let code = sources
            .get(&path, as_what, |raw| match kind {
                Kind::AsIs => Ok(raw.into()),
                Kind::Rule(rules::Rule::JavaScript) => {
                    transpile::javascript(specifier, media_type, raw)
                }
                Kind::Rule(rule) => rules::module_for(rule, specifier, raw),
            })
            .map_err(|e| match e {
                None => unavailable(),
                Some(message) => JsErrorBox::generic(message),
            })?;
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
        // A path to a file as written (the common case, no look-ups), or a URL.
        let as_written = resolve_import(specifier, referrer).ok();
        if let Some(url) = &as_written {
            if url.scheme() == "node" {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier:?} from {referrer}: Node.js built-in modules are not available on edge yet (nodejs_compat)"
                )));
            }
            if url.scheme() != "file" {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier:?} from {referrer}: only files inside the app directory can be imported"
                )));
            }
            if url.to_file_path().is_ok_and(|p| p.is_file()) {
                return Ok(url.clone());
            }
        }
        // Else as a bundler would: packages, extensionless paths, `#imports`.
        let dir = ModuleSpecifier::parse(referrer)
            .ok()
            .and_then(|r| r.to_file_path().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let sources = self.root.borrow().as_ref().map(|(_, s)| s.clone());
        let (Some(dir), Some(sources)) = (dir, sources) else {
            return as_written.ok_or_else(|| {
                JsErrorBox::type_error(format!("cannot import {specifier:?} from {referrer}"))
            });
        };
        match (sources.resolver.resolve(&dir, specifier), as_written) {
            (Ok(path), _) => ModuleSpecifier::from_file_path(&path).map_err(|()| {
                JsErrorBox::type_error(format!("cannot import {specifier:?}: {}", path.display()))
            }),
            (Err(NotFound::Package(name)), _) => Err(JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {}: no package {name:?} in node_modules (run `npm install` in the app folder)",
                at_line(referrer, specifier)
            ))),
            // A path that names no file: the load says so, as for any missing file.
            (Err(_), Some(url)) => Ok(url),
            (Err(NotFound::Other(reason)), None) => Err(JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {}: {reason}",
                at_line(referrer, specifier)
            ))),
        }
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

/// `referrer` with the line of its first import of `specifier` (`file:///app/index.js:3`),
/// read from the file as written; the module graph knows no line when resolution fails.
fn at_line(referrer: &str, specifier: &str) -> String {
    let line = ModuleSpecifier::parse(referrer)
        .ok()
        .and_then(|url| url.to_file_path().ok())
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| {
            let quoted = [format!("\"{specifier}\""), format!("'{specifier}'")];
            text.lines()
                .position(|line| quoted.iter().any(|q| line.contains(q.as_str())))
        });
    match line {
        Some(index) => format!("{referrer}:{}", index + 1),
        None => referrer.to_string(),
    }
}
