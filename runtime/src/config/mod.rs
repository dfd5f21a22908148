//! `edge.toml`: one app's configuration.
//!
//! Keys follow `wrangler.toml` where the meaning is the same, so a Worker's config carries over:
//! `name`, `main`, `compatibility_date`, `compatibility_flags`, `routes` (or `route`),
//! `[vars]` and `[[kv_namespaces]]`. Unknown keys and bad values are errors that name the file, the key and the reason.

mod fields;
mod route;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use fields::{File, app_name, is_date, kv_namespaces, main_module, routes, vars};

pub use route::{HostPattern, RoutePattern};

/// The file name of an app's configuration.
pub const CONFIG_FILE: &str = "edge.toml";

/// One app's configuration, validated.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The app's name: its tenant id in logs and errors.
    pub name: String,
    /// The main module, as an absolute path inside the app directory.
    pub main: PathBuf,
    /// The directory holding `edge.toml`; modules may import only from inside it.
    pub root: PathBuf,
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
    /// `[limits]`: what the app asks for; the node fills in defaults and applies ceilings.
    pub limits: crate::limits::LimitSettings,
    /// `[[kv_namespaces]]`: the KV namespaces this app may use, by binding name.
    pub kv_namespaces: Vec<KvNamespaceBinding>,
}

/// One `[[kv_namespaces]]` entry: `env.<binding>` is the namespace `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvNamespaceBinding {
    /// The name on `env`.
    pub binding: String,
    /// The namespace id; apps binding the same id share data.
    pub id: String,
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
    kv_namespaces: Vec<RawKvNamespace>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKvNamespace {
    binding: Option<String>,
    id: Option<String>,
    #[allow(
        dead_code,
        reason = "accepted for wrangler compatibility; edge dev uses `id` locally too"
    )]
    preview_id: Option<String>,
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
}

impl AppConfig {
    /// Loads and validates `dir/edge.toml`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(dir, &path, &text)
    }

    /// Parses and validates config text read from `path` for the app in `dir`.
    pub fn parse(dir: &Path, path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
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
        let kv_namespaces = kv_namespaces(raw.kv_namespaces, &vars, file)?;
        Ok(Self {
            name,
            main,
            root,
            compatibility_date: raw.compatibility_date,
            compatibility_flags: raw.compatibility_flags,
            routes,
            vars,
            allow_private_network: raw.outbound.allow_private,
            limits: raw.limits,
            kv_namespaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(toml: &str) -> Result<AppConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "edge-config-test-{}-{}",
            std::process::id(),
            toml.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.js"), "export default {}").unwrap();
        AppConfig::parse(&dir, &dir.join(CONFIG_FILE), toml)
    }

    #[test]
    fn full_config() {
        let c = app(r#"
name = "alpha"
main = "index.js"
compatibility_date = "2024-09-23"
routes = ["alpha.test/*", { pattern = "example.com/api/*", zone_name = "example.com" }]
kv_namespaces = [{ binding = "CACHE", id = "cache-1", preview_id = "x" }]
[vars]
GREETING = "hi"
COUNT = 3
"#)
        .unwrap();
        assert_eq!(c.name, "alpha");
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.vars["GREETING"], "hi");
        assert_eq!(c.vars["COUNT"], 3);
        assert_eq!(
            c.kv_namespaces,
            [KvNamespaceBinding {
                binding: "CACHE".into(),
                id: "cache-1".into()
            }]
        );
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
        let e = app("main = \"index.js\"\n[[kv_namespaces]]\nbinding = \"1KV\"\nid = \"a\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`kv_namespaces[0].binding`"), "{e}");
        let e = app("main = \"index.js\"\n[[kv_namespaces]]\nbinding = \"KV\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`kv_namespaces[0].id`") && e.contains("missing"),
            "{e}"
        );
        let e = app("main = \"index.js\"\nkv_namespaces = [{binding = \"KV\", id = \"a\"}, {binding = \"KV\", id = \"b\"}]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`kv_namespaces[1].binding`") && e.contains("already bound"),
            "{e}"
        );
        let e = app("main = \"index.js\"\nkv_namespaces = [{binding = \"KV\", id = \"a b\"}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`kv_namespaces[0].id`"), "{e}");
        let e = app("main = \"index.js\"\nname = \"bad name\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`name`"), "{e}");
    }
}
