//! The fields of `edge.toml`, each read and checked on its own; an error names the file, the
//! key and what is expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ConfigError, KvNamespaceBinding, RawKvNamespace, RawRoute, RoutePattern};

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

/// `main`: a `.js`/`.mjs` file inside the app folder, as an absolute path.
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
        Some("js" | "mjs") => Ok(main),
        _ => Err(file.invalid(
            "main",
            format!("{main_rel:?} is not a JavaScript module (.js or .mjs)"),
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

/// `[[kv_namespaces]]`: each a binding name free on `env` and a valid id.
pub(super) fn kv_namespaces(
    raw: Vec<RawKvNamespace>,
    vars: &serde_json::Map<String, serde_json::Value>,
    file: File,
) -> Result<Vec<KvNamespaceBinding>, ConfigError> {
    let mut out: Vec<KvNamespaceBinding> = Vec::new();
    for (i, ns) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("kv_namespaces[{i}].{field}");
        let binding = ns.binding.ok_or_else(|| {
            file.invalid(
                &key("binding"),
                "missing: the name on `env`, e.g. binding = \"MY_KV\"".into(),
            )
        })?;
        if !is_identifier(&binding) {
            return Err(file.invalid(
                &key("binding"),
                format!(
                    "{binding:?} is not a JavaScript identifier (letters, digits, `_`, `$`; not starting with a digit)"
                ),
            ));
        }
        if vars.contains_key(&binding) || out.iter().any(|b| b.binding == binding) {
            return Err(file.invalid(
                &key("binding"),
                format!("{binding:?} is already bound on `env`"),
            ));
        }
        let id = ns.id.ok_or_else(|| {
            file.invalid(
                &key("id"),
                "missing: the namespace id, e.g. id = \"0f2ac74b498b48028cb68387c421e279\"".into(),
            )
        })?;
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(file.invalid(
                &key("id"),
                format!("{id:?} is not valid: use 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        out.push(KvNamespaceBinding { binding, id });
    }
    Ok(out)
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
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
