//! The fields of `edge.toml`, each read and checked on its own; an error names the file, the
//! key and what is expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edge_binding::{DeclaredBinding, is_identifier};

use super::{ConfigError, RawRoute, RoutePattern};

/// The `edge.toml` being read, for errors that name it and the key.
#[derive(Clone, Copy)]
pub(super) struct File<'a>(pub(super) &'a Path);

impl File<'_> {
    pub(super) fn invalid(self, key: &str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.0.to_path_buf(),
            key: key.to_string(),
            reason,
        }
    }
}

/// `name`, or the folder's name: 1–63 letters, digits, `-` or `_`.
pub(super) fn app_name(
    name: Option<String>,
    root: &Path,
    file: File,
) -> Result<String, ConfigError> {
    let name = match name {
        Some(name) => name,
        None => root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| file.invalid("name", "missing, and the directory has no name".into()))?,
    };
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(file.invalid(
            "name",
            format!("{name:?} is not valid: use 1 to 63 letters, digits, `-` or `_`"),
        ));
    }
    Ok(name)
}

/// `main`: a JavaScript or TypeScript module (`.js`, `.mjs`, `.ts`, `.mts`, `.jsx`, `.tsx`) or a
/// `.wasm` component inside the app folder, as an absolute path.
pub(super) fn main_module(
    main: Option<String>,
    root: &Path,
    file: File,
) -> Result<PathBuf, ConfigError> {
    let main_rel = main.ok_or_else(|| {
        file.invalid(
            "main",
            "missing: name the entry module, e.g. main = \"src/index.js\"".into(),
        )
    })?;
    let main = root.join(&main_rel);
    let main = main
        .canonicalize()
        .map_err(|e| file.invalid("main", format!("{main_rel:?}: {e}")))?;
    if !main.starts_with(root) {
        return Err(file.invalid("main", format!("{main_rel:?} is outside the app directory")));
    }
    match main.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "ts" | "mts" | "jsx" | "tsx" | "wasm") => Ok(main),
        _ => Err(file.invalid(
            "main",
            format!("{main_rel:?} is not a JavaScript or TypeScript module (.js, .mjs, .ts, .mts, .jsx, .tsx) or a WebAssembly component (.wasm)"),
        )),
    }
}

/// `route` and `routes`, parsed.
pub(super) fn routes(
    raw: impl Iterator<Item = RawRoute>,
    file: File,
) -> Result<Vec<RoutePattern>, ConfigError> {
    raw.enumerate()
        .map(|(i, r)| {
            let pattern = match r {
                RawRoute::Pattern(p) => p,
                RawRoute::Table(t) => t.pattern,
            };
            RoutePattern::parse(&pattern)
                .map_err(|reason| file.invalid(&format!("routes[{i}]"), reason))
        })
        .collect()
}

/// `[vars]`, as the JSON `env` will hold.
pub(super) fn vars(
    raw: BTreeMap<String, toml::Value>,
    file: File,
) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    let mut vars = serde_json::Map::new();
    for (k, v) in raw {
        let json = serde_json::to_value(&v)
            .map_err(|e| file.invalid(&format!("vars.{k}"), e.to_string()))?;
        vars.insert(k, json);
    }
    Ok(vars)
}

/// The bindings' names on `env`: each a JavaScript identifier, not a var's name and not
/// another binding's.
pub(super) fn bindings(
    declared: Vec<DeclaredBinding>,
    vars: &serde_json::Map<String, serde_json::Value>,
    file: File,
) -> Result<Vec<DeclaredBinding>, ConfigError> {
    for (i, b) in declared.iter().enumerate() {
        let Some(name) = &b.name else {
            continue;
        };
        if !is_identifier(name) {
            return Err(file.invalid(
                &b.name_key,
                format!(
                    "{name:?} is not a JavaScript identifier (letters, digits, `_`, `$`; not starting with a digit)"
                ),
            ));
        }
        if vars.contains_key(name) || declared[..i].iter().any(|o| o.name == b.name) {
            return Err(file.invalid(&b.name_key, format!("{name:?} is already bound on `env`")));
        }
    }
    Ok(declared)
}

pub(super) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
