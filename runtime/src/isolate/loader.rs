//! Loads a tenant's modules from its app directory, and nowhere else; every isolate of one
//! version of the app gets the same files ([`Sources`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deno_ast::MediaType;
use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSource, ModuleSourceCode, ModuleSpecifier, ModuleType, RequestedModuleType,
    ResolutionKind, resolve_import,
};
use deno_error::JsErrorBox;

use super::builtins::{node_builtin, refusal, refused};
use super::commonjs::{self, Dep};
use super::resolve::{AppResolver, NotFound};
use super::sources::{Sources, read_regular};
use super::{rules, transpile};
use crate::config::{AppConfig, ModuleKind, ModuleRule, NodeModules};

/// What a file becomes before the engine sees it.
#[derive(Clone, Copy)]
enum Kind {
    /// Its bytes, as the import's type asked (`with { type: "json" | "text" | "bytes" }`).
    AsIs,
    /// JavaScript (or TypeScript, JSX) code: an ES module, or CommonJS wrapped as one.
    Script(Format),
    /// A JavaScript module made by the rule for its extension (see [`rules`]).
    Rule(rules::Rule),
}

/// Whether a script is an ES module or CommonJS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Decided by its extension, its package's `type` and its syntax.
    Detect,
    /// An ES module (an `ESModule` rule).
    Esm,
    /// CommonJS (a `CommonJS` rule).
    CommonJs,
}

/// The app an isolate's loader serves.
struct App {
    /// The app folder: nothing outside it is loaded.
    root: PathBuf,
    /// The folder of `main`, which `[[rules]]` globs are relative to.
    base: PathBuf,
    /// The version's files.
    sources: Arc<Sources>,
    /// The app's `[[rules]]`.
    rules: Vec<ModuleRule>,
    /// Which Node.js built-ins its imports and `require`s reach.
    node: NodeModules,
}

/// Resolves and loads `file:` modules under one app's root directory. Remote imports, bare
/// specifiers and paths that escape the root are refused with an error naming the specifier.
///
/// An isolate is made before it knows its app (see the warm pool), so the root is set once
/// the app is assigned; until then every load is refused.
pub(crate) struct AppModuleLoader {
    app: std::cell::RefCell<Option<App>>,
}

impl AppModuleLoader {
    /// A loader with no app yet.
    pub(crate) fn new() -> Self {
        Self {
            app: Default::default(),
        }
    }

    /// Confines loads to `app`'s folder from now on, reading files through the version's
    /// `sources` and taking them as its `[[rules]]` say.
    pub(crate) fn set_app(&self, app: &AppConfig, sources: Arc<Sources>) {
        *self.app.borrow_mut() = Some(App {
            root: app.root.clone(),
            base: app.main.parent().unwrap_or(&app.root).to_path_buf(),
            sources,
            rules: app.rules.clone(),
            node: app.node_compat().modules,
        });
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
        let app = self.app.borrow();
        let app = match &*app {
            Some(app) if path.starts_with(&app.root) => app,
            _ => return Err(unavailable()),
        };
        let (root, sources) = (&app.root, &app.sources);
        let ext = extension(&path);
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
            (RequestedModuleType::None, _) => {
                // Rules match paths relative to the folder of `main` (or, for a file outside it,
                // to the app folder); a package's own files keep their module format (wrangler
                // applies JavaScript rules to the app's code only).
                let in_package = path.components().any(|c| c.as_os_str() == "node_modules");
                let relative = path
                    .strip_prefix(&app.base)
                    .or_else(|_| path.strip_prefix(&app.root))
                    .ok();
                let rule = relative.and_then(|relative| {
                    app.rules.iter().find(|r| {
                        r.matches(relative)
                            && !(in_package
                                && matches!(r.kind, ModuleKind::ESModule | ModuleKind::CommonJS))
                    })
                });
                let kind = match rule {
                    Some(rule) => match rule.kind {
                        ModuleKind::ESModule => Kind::Script(Format::Esm),
                        ModuleKind::CommonJS => Kind::Script(Format::CommonJs),
                        ModuleKind::Text => Kind::Rule(rules::Rule::Text),
                        ModuleKind::Data => Kind::Rule(rules::Rule::Data),
                        ModuleKind::CompiledWasm => Kind::Rule(rules::Rule::CompiledWasm),
                    },
                    None => match rules::rule_for(&ext) {
                        Some(rules::Rule::JavaScript) => Kind::Script(Format::Detect),
                        Some(rule) => Kind::Rule(rule),
                        None => {
                            return Err(JsErrorBox::type_error(format!(
                                "cannot import {specifier}: unsupported file type (expected {}, or a [[rules]] entry in the config that matches it)",
                                rules::SUPPORTED
                            )));
                        }
                    },
                };
                (ModuleType::JavaScript, kind)
            }
            (RequestedModuleType::Other(ty), _) => {
                return Err(JsErrorBox::type_error(format!(
                    "cannot import {specifier} with type {ty:?}: the types are \"json\", \"text\" and \"bytes\""
                )));
            }
        };
        let view = commonjs::is_view(specifier);
        let node = commonjs::is_node_facade(specifier);
        let as_what = match module_type {
            ModuleType::Json => "json",
            ModuleType::Text => "text",
            ModuleType::Bytes => "bytes",
            _ if view => "commonjs view",
            _ if node => "node-mode facade",
            _ => "module",
        };
        let started = std::time::Instant::now();
        let code = sources
            .get(&path, as_what, |raw| match kind {
                Kind::AsIs => Ok(raw.into()),
                Kind::Script(format) => {
                    let script = Script {
                        specifier,
                        path: &path,
                        ext: &ext,
                        media_type,
                        format,
                        view,
                        node,
                        builtins: app.node,
                    };
                    javascript(&script, raw, root, &sources.resolver)
                }
                Kind::Rule(_) if view => Ok(commonjs::view_of(&plain(specifier), false)
                    .into_bytes()
                    .into()),
                Kind::Rule(rule) => rules::module_for(rule, specifier, raw),
            })
            .map_err(|e| match e {
                None => unavailable(),
                Some(message) => JsErrorBox::generic(message),
            })?;
        LOADED.with(|loaded| {
            let (modules, spent) = loaded.get();
            loaded.set((modules + 1, spent + started.elapsed()));
        });
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
        let url = match self.resolve_file(specifier, referrer) {
            Ok(url) => url,
            // When its loader refuses a specifier that names one of the engine's own lazily
            // loaded modules (`node:fs`, `ext:deno_node/…`), deno_core loads that module
            // anyway. A refusal through the load is final: the import fails with this error.
            Err(e) if specifier.starts_with("node:") || specifier.starts_with("ext:") => {
                return Ok(refusal(&e.to_string()));
            }
            Err(e) => return Err(e),
        };
        Ok(self.in_node_mode(url, referrer))
    }

    fn load(
        &self,
        specifier: &ModuleSpecifier,
        _referrer: Option<&ModuleLoadReferrer>,
        options: ModuleLoadOptions,
    ) -> ModuleLoadResponse {
        if let Some(message) = refused(specifier) {
            return ModuleLoadResponse::Sync(Err(JsErrorBox::type_error(message)));
        }
        ModuleLoadResponse::Sync(self.load_sync(specifier, &options.requested_module_type))
    }
}

impl AppModuleLoader {
    /// The file an import names: a path as written, else as a bundler resolves it.
    fn resolve_file(&self, specifier: &str, referrer: &str) -> ModuleResolveResponse {
        // Deno's Node modules import each other (`ext:`) and the built-ins (`node:`); only they
        // are `ext:` referrers (the engine names the referrer, not the app).
        if referrer.starts_with("ext:") {
            return resolve_import(specifier, referrer).map_err(JsErrorBox::from_err);
        }
        if let Some(builtin) = self.builtin(specifier, referrer) {
            return builtin;
        }
        // A path to a file as written (the common case, no look-ups), or a URL.
        let as_written = resolve_import(specifier, referrer).ok();
        if let Some(url) = &as_written {
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
        let sources = self.app.borrow().as_ref().map(|app| app.sources.clone());
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
            (Err(NotFound::Ignored), None) => Err(JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {}: its package's \"browser\" field maps it to false",
                at_line(referrer, specifier)
            ))),
        }
    }

    /// A Node.js built-in `specifier` names, as the app's compatibility flags allow it; `None`
    /// when it names none (or names one only as a bare name the app's flags leave to packages).
    fn builtin(&self, specifier: &str, referrer: &str) -> Option<ModuleResolveResponse> {
        let node = self
            .app
            .borrow()
            .as_ref()
            .map_or(NodeModules::Off, |a| a.node);
        let found = node_builtin(node, specifier)?;
        Some(found.map_err(|why| {
            JsErrorBox::type_error(format!(
                "cannot import {specifier:?} from {}: {why}",
                at_line(referrer, specifier)
            ))
        }))
    }

    /// `url` as `referrer` should import it: the node-mode facade of a CommonJS file when
    /// the referrer is in esbuild's "node mode" (a `.mjs`/`.mts` file, or a file of a
    /// `"type": "module"` package), where `import x from "cjs"` is `module.exports` even when
    /// the module sets `__esModule`; else `url` itself.
    fn in_node_mode(&self, url: ModuleSpecifier, referrer: &str) -> ModuleSpecifier {
        let (Ok(path), Ok(referrer)) = (url.to_file_path(), ModuleSpecifier::parse(referrer))
        else {
            return url;
        };
        // Made here (views, facades) or asked for a kind of value: not an importer's business.
        if url.query().is_some() || referrer.query().is_some() {
            return url;
        }
        let app = self.app.borrow();
        let (Some(app), Ok(from)) = (app.as_ref(), referrer.to_file_path()) else {
            return url;
        };
        let resolver = &app.sources.resolver;
        let node_mode = match extension(&from).as_str() {
            "mjs" | "mts" => true,
            "js" | "ts" | "jsx" | "tsx" => resolver.package_type(&from) == Some(true),
            _ => false,
        };
        if !node_mode {
            return url;
        }
        let Some(force) = may_be_commonjs(&path, &extension(&path), resolver) else {
            return url;
        };
        // Only files of the app folder, each read once per version.
        let Ok(path) = path.canonicalize() else {
            return url;
        };
        if !path.starts_with(&app.root) {
            return url;
        }
        let known = app
            .sources
            .commonjs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&path)
            .copied();
        let is_commonjs = known.unwrap_or_else(|| {
            let found = read_regular(&path)
                .and_then(|raw| String::from_utf8(raw).ok())
                .is_some_and(|text| commonjs::analyze(&url, &text, force).is_some());
            app.sources
                .commonjs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.clone(), found);
            found
        });
        if !is_commonjs {
            return url;
        }
        let mut facade = url;
        facade.set_query(Some(commonjs::NODE_QUERY));
        facade
    }
}

/// Whether a script file may be CommonJS by its extension and package: `Some(true)` certainly
/// (`.cjs`, or a `.js` file of a `"type": "commonjs"` package), `Some(false)` if its syntax says
/// so (a `.js` file of a package with no `type`), `None` never (an ES module).
fn may_be_commonjs(path: &Path, ext: &str, resolver: &AppResolver) -> Option<bool> {
    match ext {
        "cjs" => Some(true),
        "js" => match resolver.package_type(path) {
            Some(true) => None,
            Some(false) => Some(true),
            None => Some(false),
        },
        _ => None,
    }
}

/// A path's extension, lower case.
fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

thread_local! {
    /// Modules this thread's loader has given the engine, and the time spent reading and
    /// preparing them (transpiling, wrapping), since [`take_load_stats`] last asked.
    static LOADED: std::cell::Cell<(u32, std::time::Duration)> = Default::default();
}

/// The modules loaded on this thread and the time spent preparing them since the last call.
pub(crate) fn take_load_stats() -> (u32, std::time::Duration) {
    LOADED.with(|loaded| loaded.replace(Default::default()))
}

/// A script file being loaded.
struct Script<'a> {
    specifier: &'a ModuleSpecifier,
    path: &'a Path,
    ext: &'a str,
    media_type: MediaType,
    format: Format,
    /// Its CommonJS view is asked for (`?edge-cjs`: what `require` reaches).
    view: bool,
    /// Its node-mode facade is asked for (`?edge-node`).
    node: bool,
    /// Which Node.js built-ins its `require`s reach.
    builtins: NodeModules,
}

/// A script's code for the engine. A CommonJS file (a `CommonJS` rule; `.cjs`; a `.js` file
/// outside a `"type": "module"` package that uses CommonJS and has no `import` or `export`)
/// is its facade, or its view (see [`commonjs`]); an ES module is itself (transpiled if it
/// needs it), or as a view, an object of its exports.
fn javascript(
    script: &Script<'_>,
    raw: &[u8],
    root: &Path,
    resolver: &AppResolver,
) -> Result<Arc<[u8]>, String> {
    let Script {
        specifier,
        path,
        ext,
        media_type,
        format,
        view,
        node,
        builtins,
    } = *script;
    let force = match format {
        Format::Esm => None,
        Format::CommonJs => Some(true),
        Format::Detect => may_be_commonjs(path, ext, resolver),
    };
    if force.is_none() && !view {
        return transpile::javascript(specifier, media_type, raw);
    }
    let text =
        std::str::from_utf8(raw).map_err(|e| format!("{specifier}: not UTF-8 text ({e})"))?;
    let analysis = force.and_then(|force| commonjs::analyze(specifier, text, force));
    let Some(analysis) = analysis else {
        return if view {
            Ok(commonjs::view_of(&plain(specifier), true)
                .into_bytes()
                .into())
        } else {
            transpile::javascript(specifier, media_type, raw)
        };
    };
    let dir = path.parent().unwrap_or(root);
    if view {
        let deps: Vec<Dep> = analysis
            .requires
            .iter()
            .filter_map(|name| {
                // A built-in the app's flags give it (one they refuse stays out: `require`
                // then throws, naming it).
                if let Some(builtin) = node_builtin(builtins, name) {
                    return builtin.ok().map(|url| Dep {
                        name: name.clone(),
                        url: Some(url),
                    });
                }
                let url = match required_file(resolver, dir, name, root)? {
                    Required::File(url, _) => Some(url),
                    Required::Ignored => None,
                };
                Some(Dep {
                    name: name.clone(),
                    url,
                })
            })
            .collect();
        let shown = format!(
            "/{}",
            path.strip_prefix(root).unwrap_or(path).to_string_lossy()
        );
        let code = commonjs::view(&shown, text, &deps);
        return transpile::javascript(specifier, MediaType::JavaScript, code.as_bytes());
    }
    let mut exports = analysis.exports.clone();
    let mut seen = vec![path.to_path_buf()];
    reexported(
        resolver,
        dir,
        &analysis.reexports,
        root,
        &mut seen,
        &mut exports,
    );
    Ok(
        commonjs::facade(&commonjs::view_url(specifier), &exports, node)
            .into_bytes()
            .into(),
    )
}

/// `url` without its query.
fn plain(url: &ModuleSpecifier) -> ModuleSpecifier {
    let mut plain = url.clone();
    plain.set_query(None);
    plain
}

/// What a `require` resolves to at load.
enum Required {
    /// A file the app may import, with its rule.
    File(ModuleSpecifier, rules::Rule),
    /// A file a package's `browser` map sets to `false`.
    Ignored,
}

/// What `require(name)` in `dir` loads; `None` when it finds nothing the app may import.
fn required_file(resolver: &AppResolver, dir: &Path, name: &str, root: &Path) -> Option<Required> {
    let found = match resolver.resolve_require(dir, name) {
        Ok(found) => found.canonicalize().ok()?,
        Err(NotFound::Ignored) => return Some(Required::Ignored),
        Err(_) => return None,
    };
    if !found.starts_with(root) {
        return None;
    }
    let rule = rules::rule_for(&extension(&found))?;
    Some(Required::File(
        ModuleSpecifier::from_file_path(&found).ok()?,
        rule,
    ))
}

/// Adds to `exports` the names the CommonJS modules `reexports` (required from `dir`) export,
/// following their own re-exports; each file once, at most 16 files.
fn reexported(
    resolver: &AppResolver,
    dir: &Path,
    reexports: &[String],
    root: &Path,
    seen: &mut Vec<PathBuf>,
    exports: &mut Vec<String>,
) {
    for name in reexports {
        let Some(Required::File(url, rules::Rule::JavaScript)) =
            required_file(resolver, dir, name, root)
        else {
            continue;
        };
        let Ok(path) = url.to_file_path() else {
            continue;
        };
        if seen.contains(&path) || seen.len() >= 16 {
            continue;
        }
        seen.push(path.clone());
        let force = path.extension().is_some_and(|e| e == "cjs");
        let Some(text) = read_regular(&path).and_then(|raw| String::from_utf8(raw).ok()) else {
            continue;
        };
        let Some(analysis) = commonjs::analyze(&url, &text, force) else {
            continue;
        };
        exports.extend(analysis.exports);
        let next = path.parent().unwrap_or(root).to_path_buf();
        reexported(resolver, &next, &analysis.reexports, root, seen, exports);
    }
}

/// `referrer` with the line of its first import of `specifier` (`file:///app/index.js:3`),
/// read from the file as written; the module graph knows no line when resolution fails.
fn at_line(referrer: &str, specifier: &str) -> String {
    let line = ModuleSpecifier::parse(referrer)
        .ok()
        .and_then(|url| url.to_file_path().ok())
        .and_then(|path| read_regular(&path))
        .and_then(|raw| String::from_utf8(raw).ok())
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
