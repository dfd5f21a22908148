//! How an app's imports find files, as wrangler's esbuild step finds them: bare specifiers
//! (`"hono"`, `"hono/cors"`) from `node_modules` by the packages' `exports` (conditions
//! `workerd`, `worker`, `browser`, `import`, `module`, `default`), then `browser`, `module`,
//! `main`; `imports` (`#internal`); extensionless paths (`./util` finds `util.ts`) and
//! TypeScript's `.js`-for-`.ts` convention. A CommonJS module's `require("…")` resolves the same
//! way with the condition `require` in place of `import` and without the `module` field. The resolver is `oxc_resolver` (enhanced-resolve's
//! algorithm, which bundlers use; Node's own algorithm has no `module`/`browser` fields and
//! wants full paths in ESM). What it finds must still be inside the app folder: the loader
//! checks every file it reads.

use std::path::{Path, PathBuf};

use oxc_resolver::{ResolveError, ResolveOptions, Resolver};

/// Conditions of `exports`/`imports` maps, in wrangler's order for Workers.
const CONDITIONS: [&str; 6] = [
    "workerd", "worker", "browser", "import", "module", "default",
];

/// Conditions for `require("…")`, in wrangler's order.
const REQUIRE_CONDITIONS: [&str; 5] = ["workerd", "worker", "browser", "require", "default"];

/// Package fields tried when a package has no `exports`.
const MAIN_FIELDS: [&str; 3] = ["browser", "module", "main"];

/// Package fields tried by `require("…")` when a package has no `exports`.
const REQUIRE_MAIN_FIELDS: [&str; 2] = ["browser", "main"];

/// Extensions tried for an import that names no file, as esbuild tries them.
const EXTENSIONS: [&str; 7] = [".tsx", ".ts", ".jsx", ".js", ".mjs", ".mts", ".json"];

/// Resolves the imports of one app version's modules (its lookups are cached).
pub(crate) struct AppResolver {
    import: Resolver,
    /// The same, for `require("…")` (sharing the cache).
    require: Resolver,
}

impl std::fmt::Debug for AppResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppResolver")
    }
}

impl Default for AppResolver {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let import = Resolver::new(ResolveOptions {
            condition_names: strings(&CONDITIONS),
            main_fields: strings(&MAIN_FIELDS),
            extensions: strings(&EXTENSIONS),
            extension_alias: vec![
                (".js".into(), strings(&[".ts", ".tsx", ".js"])),
                (".mjs".into(), strings(&[".mts", ".mjs"])),
                (".jsx".into(), strings(&[".tsx", ".jsx"])),
            ],
            alias_fields: vec![vec!["browser".into()]],
            // The host's NODE_PATH is not the app's business.
            node_path: false,
            // The `type` of the package a file is in (see `package_type`).
            module_type: true,
            ..ResolveOptions::default()
        });
        let require = import.clone_with_options(ResolveOptions {
            condition_names: strings(&REQUIRE_CONDITIONS),
            main_fields: strings(&REQUIRE_MAIN_FIELDS),
            ..import.options().clone()
        });
        Self { import, require }
    }
}

/// Why an import found no file.
#[derive(Debug)]
pub(crate) enum NotFound {
    /// No package of that name under any `node_modules` above the importer.
    Package(String),
    /// A package's `browser` map says the file is not to be loaded (`"./x.js": false`).
    Ignored,
    /// Anything else the resolver says (a path not exported, a missing file), in its words.
    Other(String),
}

impl AppResolver {
    /// The file `specifier` names for a module in `dir`.
    pub(crate) fn resolve(&self, dir: &Path, specifier: &str) -> Result<PathBuf, NotFound> {
        Self::found(self.import.resolve(dir, specifier), specifier)
    }

    /// The file `require(specifier)` names for a CommonJS module in `dir`.
    pub(crate) fn resolve_require(&self, dir: &Path, specifier: &str) -> Result<PathBuf, NotFound> {
        Self::found(self.require.resolve(dir, specifier), specifier)
    }

    /// Whether the `package.json` nearest to `file` says its `.js` files are ES modules
    /// (`Some(true)`, `"type": "module"`) or CommonJS (`Some(false)`); `None` when it says
    /// neither (the file's syntax decides, as in esbuild and Node).
    pub(crate) fn package_type(&self, file: &Path) -> Option<bool> {
        let dir = file.parent()?;
        match self
            .import
            .resolve(dir, file.to_str()?)
            .ok()?
            .module_type()?
        {
            oxc_resolver::ModuleType::Module => Some(true),
            oxc_resolver::ModuleType::CommonJs => Some(false),
            _ => None,
        }
    }

    fn found(
        result: Result<oxc_resolver::Resolution, ResolveError>,
        specifier: &str,
    ) -> Result<PathBuf, NotFound> {
        match result {
            Ok(found) => Ok(found.into_path_buf()),
            Err(ResolveError::Ignored(_)) => Err(NotFound::Ignored),
            Err(ResolveError::NotFound(_)) if is_bare(specifier) => {
                Err(NotFound::Package(package_name(specifier).to_string()))
            }
            Err(e) => Err(NotFound::Other(e.to_string())),
        }
    }
}

/// Whether `specifier` names a package (not a path, URL or `#import`).
pub(crate) fn is_bare(specifier: &str) -> bool {
    !(specifier.starts_with('.')
        || specifier.starts_with('/')
        || specifier.starts_with('#')
        || specifier.contains(':'))
}

/// The package a bare specifier names: `@scope/name` or `name`, without a subpath.
fn package_name(specifier: &str) -> &str {
    let mut parts = specifier.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    match (first.starts_with('@'), parts.next()) {
        (true, Some(name)) => &specifier[..first.len() + 1 + name.len()],
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_and_bare_specifiers() {
        assert_eq!(package_name("hono"), "hono");
        assert_eq!(package_name("hono/cors"), "hono");
        assert_eq!(package_name("@scope/pkg/sub/path"), "@scope/pkg");
        assert!(is_bare("hono") && is_bare("@a/b"));
        for not in ["./a", "../a", "/a", "#internal", "node:fs", "https://x"] {
            assert!(!is_bare(not), "{not}");
        }
    }
}
