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
pub(crate) struct Sources(Mutex<Files>);

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
        let resolved = resolve_import(specifier, referrer).map_err(JsErrorBox::from_err)?;
        if resolved.scheme() != "file" {
            return Err(JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {referrer}: only files inside the app directory can be imported"
            )));
        }
        Ok(bundler_style(resolved))
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

/// Extensions tried, in order, for an import that names no file, as esbuild (and so wrangler)
/// tries them.
const IMPLICIT_EXTENSIONS: [&str; 6] = ["tsx", "ts", "jsx", "js", "mjs", "mts"];

/// A `file:` import resolved as bundlers resolve it when the file it names does not exist:
/// `./util` finds `./util.ts` (or `.tsx`, `.jsx`, `.js`, `.mjs`, `.mts`) or `./util/index.ts`
/// (and so on), and `./util.js` finds `./util.ts` (TypeScript's own convention). Otherwise the
/// import stays as written (and fails to load, naming it).
fn bundler_style(resolved: ModuleSpecifier) -> ModuleSpecifier {
    let Ok(path) = resolved.to_file_path() else {
        return resolved;
    };
    if path.is_file() {
        return resolved;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let mut candidates: Vec<PathBuf> = match ext {
        "js" => vec![path.with_extension("ts"), path.with_extension("tsx")],
        "mjs" => vec![path.with_extension("mts")],
        "jsx" => vec![path.with_extension("tsx")],
        _ => Vec::new(),
    };
    if !IMPLICIT_EXTENSIONS.contains(&ext) {
        let name = path.as_os_str();
        for e in IMPLICIT_EXTENSIONS {
            let mut with = name.to_os_string();
            with.push(".");
            with.push(e);
            candidates.push(with.into());
        }
        for e in IMPLICIT_EXTENSIONS {
            candidates.push(path.join(format!("index.{e}")));
        }
    }
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .and_then(|c| ModuleSpecifier::from_file_path(c).ok())
        .unwrap_or(resolved)
}
