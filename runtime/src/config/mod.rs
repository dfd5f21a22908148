//! `edge.toml`: one app's configuration, or the Worker's own `wrangler.toml`, `wrangler.jsonc`
//! or `wrangler.json` when the folder has no `edge.toml` (see [`config_file`]).
//!
//! Keys follow `wrangler.toml` where the meaning is the same, so a Worker's config carries over:
//! `name`, `main`, `compatibility_date`, `compatibility_flags`, `routes` (or `route`),
//! `[vars]`, `[limits]`, `[outbound]`, and each registered binding's own key (`[[kv_namespaces]]`,
//! …), which that binding reads (see [`edge_binding::Binding::parse`]). Unknown keys and bad
//! values are errors that name the file, the key (and the line) and the reason.

mod environment;
mod fields;
mod module_rules;
mod node_compat;
mod route;
mod wrangler;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use edge_binding::{ConfigIssue, DeclaredBinding, Registry, Section};
use fields::{File, app_name, bindings, is_date, main_module, routes, vars};

pub use module_rules::{ModuleKind, ModuleRule};
pub use node_compat::{NodeCompat, NodeModules};
pub use route::{HostPattern, RoutePattern};

/// The file name of an app's own configuration (what `edge new` writes).
pub const CONFIG_FILE: &str = "edge.toml";

/// The configuration files edge reads, in the order it looks for them: its own, then
/// wrangler's (TOML, then JSON with comments, then JSON).
pub const CONFIG_FILES: [&str; 4] = [
    CONFIG_FILE,
    "wrangler.toml",
    "wrangler.jsonc",
    "wrangler.json",
];

/// The configuration file of the app in `dir`: the first of [`CONFIG_FILES`] there.
pub fn config_file(dir: &Path) -> Option<PathBuf> {
    CONFIG_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// One app's configuration, validated.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The app's name: its tenant id in logs and errors.
    pub name: String,
    /// The main module, as an absolute path inside the app directory.
    pub main: PathBuf,
    /// The directory holding the config file; modules may import only from inside it.
    pub root: PathBuf,
    /// The config file read (`edge.toml`, or wrangler's).
    pub file: PathBuf,
    /// What the config asked for that edge ignores (wrangler settings it does not implement
    /// yet), one line each, to log when the app loads and to show in `edge check`.
    pub warnings: Vec<String>,
    /// `compatibility_date`, recorded as given.
    pub compatibility_date: Option<String>,
    /// `compatibility_flags`, recorded as given.
    pub compatibility_flags: Vec<String>,
    /// Where this app is served (ignored by `edge dev`, which sends everything to its one app).
    pub routes: Vec<RoutePattern>,
    /// `[vars]`: plain values exposed on `env`.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Outbound `fetch` may reach loopback and private networks (`[outbound] allow_private`).
    pub allow_private_network: bool,
    /// The node grants the app its `nodejs_compat` (see [`AppConfig::node_compat`]); `true`
    /// until a node that does not says otherwise.
    pub nodejs_granted: bool,
    /// `[limits]`: what the app asks for; the node fills in defaults and applies ceilings.
    pub limits: crate::limits::LimitSettings,
    /// The bindings the app declares (KV namespaces, …), each a name on `env`, grouped by
    /// kind in `edge.toml` order.
    pub bindings: Vec<DeclaredBinding>,
    /// `[[rules]]`: what the app's own rules make of the files they match, tried in order
    /// before the built-in ones.
    pub rules: Vec<ModuleRule>,
}

/// Why an app's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        message: String,
    },
    /// A key has a value that parses but is not acceptable.
    #[error("{path}: `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigError {
    /// The app folder whose config this is.
    pub fn folder(&self) -> &Path {
        let (Self::Read { path, .. } | Self::Parse { path, .. } | Self::Invalid { path, .. }) =
            self;
        path.parent().unwrap_or(path)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Option<String>,
    main: Option<String>,
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Vec<String>,
    route: Option<RawRoute>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    outbound: RawOutbound,
    #[serde(default)]
    limits: crate::limits::LimitSettings,
    #[serde(default)]
    rules: Vec<module_rules::RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    #[serde(default)]
    allow_private: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Pattern(String),
    Table(RawRouteTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteTable {
    pattern: String,
    #[allow(
        dead_code,
        reason = "accepted for wrangler compatibility; routing is by pattern"
    )]
    zone_name: Option<String>,
    #[allow(
        dead_code,
        reason = "accepted for wrangler compatibility; routing is by pattern"
    )]
    custom_domain: Option<bool>,
    #[allow(
        dead_code,
        reason = "accepted for wrangler compatibility; routing is by pattern"
    )]
    zone_id: Option<String>,
}

impl AppConfig {
    /// Loads and validates the app in `dir` from its [`config_file`]; the keys of `registry`'s
    /// bindings are read by them.
    pub fn load(dir: &Path, registry: &Registry) -> Result<Self, ConfigError> {
        Self::load_env(dir, registry, None)
    }

    /// [`AppConfig::load`] for the environment `env` (`[env.<env>]`, as `wrangler --env`);
    /// `None`: the top level.
    pub fn load_env(
        dir: &Path,
        registry: &Registry,
        env: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let path = config_file(dir).unwrap_or_else(|| dir.join(CONFIG_FILE));
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        if path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonc")
        {
            let toml = wrangler::json_as_toml(&text).map_err(|message| ConfigError::Parse {
                path: path.clone(),
                message,
            })?;
            // Line numbers in the TOML made from the JSON would mislead: keep the reasons.
            return Self::parse_env(dir, &path, &toml, registry, env).map_err(|e| match e {
                ConfigError::Parse { path, message } => ConfigError::Parse {
                    path,
                    message: wrangler::without_toml_position(&message),
                },
                other => other,
            });
        }
        Self::parse_env(dir, &path, &text, registry, env)
    }

    /// Parses and validates config text read from `path` for the app in `dir`.
    pub fn parse(
        dir: &Path,
        path: &Path,
        text: &str,
        registry: &Registry,
    ) -> Result<Self, ConfigError> {
        Self::parse_env(dir, path, text, registry, None)
    }

    /// [`AppConfig::parse`] for the environment `env` (see [`AppConfig::load_env`]).
    pub fn parse_env(
        dir: &Path,
        path: &Path,
        text: &str,
        registry: &Registry,
        env: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let parse_error = |mut e: toml::de::Error| {
            e.set_input(Some(text));
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            }
        };
        // One parse; the bindings' keys go to their bindings, the rest is the app's own.
        let doc = toml::de::DeTable::parse(text).map_err(parse_error)?;
        let span = doc.span();
        let doc = environment::select(doc.into_inner(), env).map_err(|(key, reason)| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                reason,
            }
        })?;
        let mut own = toml::de::DeTable::default();
        let mut declared = Vec::new();
        let mut warnings = Vec::new();
        for (key, value) in doc {
            if let Some(warning) = wrangler::unimplemented(key.get_ref()) {
                if !warning.is_empty() {
                    warnings.push(format!("{}: {warning}", path.display()));
                }
                continue;
            }
            if !registry.is_config_key(key.get_ref()) {
                own.insert(key, value);
                continue;
            }
            let section = Section::new(key.get_ref(), value, text);
            if let Some(parsed) = registry.parse(&section) {
                declared.extend(parsed.map_err(|issue| binding_error(path, issue))?);
            }
        }
        let raw =
            RawConfig::deserialize(toml::de::Deserializer::from(toml::Spanned::new(span, own)))
                .map_err(parse_error)?;
        let file = File(path);
        let root = dir
            .canonicalize()
            .map_err(|e| file.invalid("main", format!("cannot resolve the app directory: {e}")))?;
        let name = app_name(raw.name, &root, file)?;
        let main = main_module(raw.main, &root, file)?;
        if let Some(date) = &raw.compatibility_date
            && !is_date(date)
        {
            return Err(file.invalid(
                "compatibility_date",
                format!("{date:?} is not a date of the form YYYY-MM-DD"),
            ));
        }
        let routes = routes(raw.route.into_iter().chain(raw.routes), file)?;
        let vars = vars(raw.vars, file)?;
        raw.limits
            .validate()
            .map_err(|(key, reason)| file.invalid(&key, reason))?;
        let bindings = bindings(declared, &vars, file)?;
        let rules = module_rules::module_rules(raw.rules, file)?;
        Ok(Self {
            name,
            main,
            root,
            file: path.to_path_buf(),
            warnings,
            compatibility_date: raw.compatibility_date,
            compatibility_flags: raw.compatibility_flags,
            routes,
            vars,
            allow_private_network: raw.outbound.allow_private,
            nodejs_granted: true,
            limits: raw.limits,
            bindings,
            rules,
        })
    }
}

/// A binding's issue with its section, as an error naming the file.
fn binding_error(path: &Path, issue: ConfigIssue) -> ConfigError {
    match issue {
        ConfigIssue::Parse(message) => ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        },
        ConfigIssue::Invalid { key, reason } => ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_binding::{AppInfo, Binding, Declared, NodeStore, StoreError};

    /// A binding for these tests: `[[things]]` with a `binding` name and a `size`.
    struct Things;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        binding: String,
        size: u32,
    }

    impl Binding for Things {
        type Entry = u32;
        type Node = ();
        type App = ();
        fn kind(&self) -> &'static str {
            "thing"
        }
        fn config_key(&self) -> Option<&'static str> {
            Some("things")
        }
        fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<u32>>, ConfigIssue> {
            let raw: Vec<Thing> = section.deserialize()?;
            Ok(raw
                .into_iter()
                .enumerate()
                .map(|(i, t)| Declared {
                    name: Some(t.binding),
                    name_key: format!("things[{i}].binding"),
                    entry: t.size,
                })
                .collect())
        }
        fn open(&self, _: &NodeStore) -> Result<(), StoreError> {
            Ok(())
        }
        fn configure(&self, _: &std::sync::Arc<()>, _: &AppInfo<'_>, _: &[&u32]) {}
    }

    impl edge_binding::js::JsBinding for Things {
        fn extension(&self) -> Option<deno_core::Extension> {
            None
        }
        fn install(&self, _: &(), _: &mut deno_core::OpState) {}
    }

    impl edge_binding::wasm::WasmBinding for Things {
        fn add_to_linker(
            &self,
            _: &mut wasmtime::component::Linker<edge_binding::wasm::StoreData>,
        ) -> wasmtime::Result<()> {
            Ok(())
        }
        fn install(&self, _: &(), _: &[(&str, u32)], _: &mut edge_binding::wasm::Slots) {}
    }

    fn app(toml: &str) -> Result<AppConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "edge-config-test-{}-{}",
            std::process::id(),
            toml.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.js"), "export default {}").unwrap();
        let registry = Registry::default().register(Things);
        AppConfig::parse(&dir, &dir.join(CONFIG_FILE), toml, &registry)
    }

    #[test]
    fn full_config() {
        let c = app(r#"
name = "alpha"
main = "index.js"
compatibility_date = "2024-09-23"
routes = ["alpha.test/*", { pattern = "example.com/api/*", zone_name = "example.com" }]
things = [{ binding = "BIG", size = 3 }, { binding = "SMALL", size = 1 }]
[vars]
GREETING = "hi"
COUNT = 3
"#)
        .unwrap();
        assert_eq!(c.name, "alpha");
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.vars["GREETING"], "hi");
        assert_eq!(c.vars["COUNT"], 3);
        let names: Vec<_> = c
            .bindings
            .iter()
            .filter(|b| b.kind == "thing")
            .map(|b| b.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["BIG", "SMALL"]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = app("name = \"a\"\nmain = \"index.js\"\nmian = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("edge.toml"), "{e}");
        assert!(e.contains("unknown field `mian`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn a_bindings_errors_name_the_file_and_line() {
        let e = app("main = \"index.js\"\n\n[[things]]\nbinding = \"A\"\nsize = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("edge.toml"), "{e}");
        assert!(e.contains("line 5") && e.contains("things"), "{e}");
        let e = app("main = \"index.js\"\n[[things]]\nbinding = \"A\"\nsize = 1\ncolour = 2\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `colour`") && e.contains("line 5"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = app("main = \"nope.js\"").unwrap_err().to_string();
        assert!(e.contains("`main`") && e.contains("nope.js"), "{e}");
        let e = app("main = \"index.js\"\ncompatibility_date = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`compatibility_date`"), "{e}");
        let e = app("main = \"index.js\"\nroutes = [\"no-path\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`routes[0]`"), "{e}");
        let e = app("main = \"index.js\"\n[[things]]\nbinding = \"1KV\"\nsize = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`things[0].binding`"), "{e}");
        let e = app("main = \"index.js\"\nthings = [{binding = \"KV\", size = 1}, {binding = \"KV\", size = 2}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`things[1].binding`") && e.contains("already bound"),
            "{e}"
        );
        let e = app("main = \"index.js\"\nthings = [{binding = \"GREETING\", size = 1}]\n[vars]\nGREETING = 1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`things[0].binding`") && e.contains("already bound"),
            "{e}"
        );
        let e = app("main = \"index.js\"\nname = \"bad name\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`name`"), "{e}");
    }
}
