//! Reading a Worker's own wrangler configuration: the settings wrangler has that edge does not
//! implement (yet) are each named in one warning and skipped, so the app still runs if its code
//! does not use them; `wrangler.jsonc` / `wrangler.json` (JSON with comments and trailing commas)
//! are read as the same keys.

/// Top-level wrangler settings edge does not implement, with what a user should know. Keys
/// that are neither these nor edge's own stay errors.
const UNIMPLEMENTED: &[(&str, &str)] = &[
    // Bindings: `env.NAME` will be missing.
    (
        "durable_objects",
        "Durable Objects are not supported yet; their bindings are missing from `env`",
    ),
    (
        "r2_buckets",
        "R2 buckets are not supported yet; their bindings are missing from `env`",
    ),
    (
        "d1_databases",
        "D1 databases are not supported yet; their bindings are missing from `env`",
    ),
    (
        "services",
        "service bindings are not supported yet; they are missing from `env`",
    ),
    (
        "vectorize",
        "Vectorize is not supported; its bindings are missing from `env`",
    ),
    (
        "hyperdrive",
        "Hyperdrive is not supported; its bindings are missing from `env`",
    ),
    (
        "analytics_engine_datasets",
        "Analytics Engine is not supported; its bindings are missing from `env`",
    ),
    (
        "ai",
        "Workers AI is not supported; its binding is missing from `env`",
    ),
    (
        "browser",
        "Browser Rendering is not supported; its binding is missing from `env`",
    ),
    (
        "images",
        "the Images binding is not supported; it is missing from `env`",
    ),
    (
        "send_email",
        "Email bindings are not supported; they are missing from `env`",
    ),
    (
        "dispatch_namespaces",
        "dispatch namespaces are not supported; they are missing from `env`",
    ),
    (
        "mtls_certificates",
        "mTLS certificate bindings are not supported; they are missing from `env`",
    ),
    (
        "workflows",
        "Workflows are not supported; their bindings are missing from `env`",
    ),
    (
        "pipelines",
        "Pipelines are not supported; their bindings are missing from `env`",
    ),
    (
        "secrets_store_secrets",
        "Secrets Store bindings are not supported; they are missing from `env`",
    ),
    (
        "version_metadata",
        "the version metadata binding is not supported; it is missing from `env`",
    ),
    ("containers", "Containers are not supported"),
    ("assets", "static assets are not served yet"),
    ("site", "Workers Sites are not supported"),
    (
        "wasm_modules",
        "`wasm_modules` (service-worker syntax) is not supported: import the .wasm file",
    ),
    (
        "text_blobs",
        "`text_blobs` (service-worker syntax) is not supported: import the file",
    ),
    (
        "data_blobs",
        "`data_blobs` (service-worker syntax) is not supported: import the file",
    ),
    ("unsafe", "`unsafe` bindings are not supported"),
    ("migrations", "Durable Object migrations have no effect"),
    ("alias", "import aliases are not applied yet"),
    ("define", "`define` substitutions are not applied"),
    // Cloudflare account, deployment and build settings: no meaning on a node of one's own.
    ("account_id", "has no effect on edge"),
    ("zone_id", "has no effect on edge"),
    ("workers_dev", "has no effect on edge"),
    ("preview_urls", "has no effect on edge"),
    ("compliance_region", "has no effect on edge"),
    ("first_party_worker", "has no effect on edge"),
    (
        "usage_model",
        "has no effect on edge (see [limits] for what applies)",
    ),
    ("placement", "has no effect on edge"),
    ("logpush", "has no effect on edge"),
    (
        "observability",
        "has no effect on edge (logs go to the node's stderr)",
    ),
    ("tail_consumers", "tail Workers are not supported"),
    ("logfwdr", "has no effect on edge"),
    (
        "upload_source_maps",
        "has no effect on edge (TypeScript source maps are always kept)",
    ),
    ("send_metrics", "has no effect on edge"),
    ("keep_vars", "has no effect on edge"),
    (
        "build",
        "custom builds are not run: run the build yourself and point `main` at its output",
    ),
    (
        "no_bundle",
        "has no effect on edge (modules are loaded unbundled)",
    ),
    (
        "find_additional_modules",
        "has no effect on edge (every module in the app folder can be imported)",
    ),
    ("base_dir", "has no effect on edge"),
    ("preserve_file_names", "has no effect on edge"),
    ("minify", "has no effect on edge"),
    ("keep_names", "has no effect on edge"),
    (
        "node_compat",
        "the legacy `node_compat` polyfills are not supported",
    ),
    (
        "tsconfig",
        "is not read: TypeScript is transpiled with default settings",
    ),
    (
        "jsx_factory",
        "is not read: JSX uses React.createElement unless a @jsx pragma says otherwise",
    ),
    (
        "jsx_fragment",
        "is not read: JSX fragments use React.Fragment unless a pragma says otherwise",
    ),
    ("legacy_env", "has no effect on edge"),
    (
        "dev",
        "wrangler dev's settings are not read: use edge dev's flags (--port, --persist-to)",
    ),
];

/// Top-level keys skipped without a word: editor hints.
const SILENT: &[&str] = &["$schema"];

/// The warning for a top-level key wrangler has and edge does not implement, if `key` is one
/// (empty for a key skipped silently); `None` for keys edge reads itself or does not know.
pub(super) fn unimplemented(key: &str) -> Option<String> {
    if SILENT.contains(&key) {
        return Some(String::new());
    }
    UNIMPLEMENTED
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, why)| format!("`{k}` ignored: {why}"))
}

/// A JSON-with-comments config as TOML text with the same keys (nulls dropped: TOML has none,
/// and wrangler reads a null as absent).
pub(super) fn json_as_toml(text: &str) -> Result<String, String> {
    let value: serde_json::Value =
        jsonc_parser::parse_to_serde_value(text, &Default::default()).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(_) = value else {
        return Err("the configuration must be a JSON object".into());
    };
    let value = without_nulls(value);
    toml::to_string(&value).map_err(|e| format!("cannot read the configuration: {e}"))
}

fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
        }
        other => other,
    }
}

/// A TOML parse message without its position and source excerpt (which would point into TOML
/// made from JSON): the reason alone.
pub(super) fn without_toml_position(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('|'))
        .map(|line| line.trim().to_string())
        .filter(|line| !line.starts_with("TOML parse error"))
        .unwrap_or_else(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonc_becomes_the_same_keys() {
        let toml = json_as_toml(
            r#"{
              // comments and trailing commas, as wrangler.jsonc has them
              "$schema": "node_modules/wrangler/config-schema.json",
              "name": "app",
              "main": "src/index.ts",
              "compatibility_flags": ["nodejs_compat",],
              "vars": { "A": "1", "N": 2, "GONE": null },
              "kv_namespaces": [{ "binding": "KV", "id": "abc" }],
            }"#,
        )
        .unwrap();
        let back: toml::Table = toml.parse().unwrap();
        assert_eq!(back["name"].as_str(), Some("app"));
        assert_eq!(back["vars"]["N"].as_integer(), Some(2));
        assert!(back["vars"].get("GONE").is_none());
        assert_eq!(back["kv_namespaces"][0]["id"].as_str(), Some("abc"));
        assert!(json_as_toml("[1]").is_err());
        assert!(json_as_toml("{ \"a\": }").is_err());
    }

    #[test]
    fn wrangler_only_keys_warn_and_others_do_not() {
        assert!(unimplemented("r2_buckets").unwrap().contains("R2"));
        assert_eq!(unimplemented("$schema").as_deref(), Some(""));
        assert!(unimplemented("kv_namespaces").is_none());
        assert!(unimplemented("colour").is_none());
    }

    #[test]
    fn toml_positions_are_dropped() {
        let m = "TOML parse error at line 3, column 8\n  |\n3 | x = 1\n  |     ^\ninvalid type: integer `1`, expected a string\n";
        assert_eq!(
            without_toml_position(m),
            "invalid type: integer `1`, expected a string"
        );
    }
}
