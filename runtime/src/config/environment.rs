//! Wrangler's environments: `[env.<name>]` sections, chosen with `--env <name>`. The chosen
//! section's keys replace the top level's; of the keys it does not set, the inheritable ones
//! (`main`, `compatibility_date`, `routes`, `triggers`, `[limits]`, …) come from the top level
//! and the bindings and `[vars]` do not (wrangler's rule: each environment declares its own).
//! The app's name becomes `<name>-<env>` unless the section names it. Without `--env` the top
//! level is the configuration and the sections are not read.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Top-level keys an environment does not inherit (wrangler's non-inheritable keys, and
/// edge's own bindings).
const NOT_INHERITED: &[&str] = &[
    "vars",
    "define",
    "kv_namespaces",
    "queues",
    "durable_objects",
    "r2_buckets",
    "d1_databases",
    "services",
    "vectorize",
    "hyperdrive",
    "analytics_engine_datasets",
    "tail_consumers",
    "dispatch_namespaces",
    "mtls_certificates",
    "ai",
    "browser",
    "images",
    "send_email",
    "workflows",
    "pipelines",
    "secrets_store_secrets",
    "version_metadata",
    "unsafe",
];

/// The configuration `doc` describes for environment `env` (see the module docs); `doc` with
/// its `env` sections dropped when `env` is `None`. The error is for the key it concerns.
pub(super) fn select<'i>(
    mut doc: DeTable<'i>,
    env: Option<&str>,
) -> Result<DeTable<'i>, (String, String)> {
    let sections = doc.remove("env");
    let Some(env) = env else {
        return Ok(doc);
    };
    let available = |sections: &Option<Spanned<DeValue<'i>>>| -> String {
        match sections.as_ref().map(Spanned::get_ref) {
            Some(DeValue::Table(t)) if !t.is_empty() => t
                .keys()
                .map(|k| k.get_ref().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_string(),
        }
    };
    let listed = available(&sections);
    let chosen = match sections.map(Spanned::into_inner) {
        Some(DeValue::Table(mut t)) => t.remove(env),
        Some(_) => return Err(("env".into(), "must be a table of environments".into())),
        None => None,
    };
    let Some(chosen) = chosen else {
        return Err((
            format!("env.{env}"),
            format!("no such environment (the environments defined: {listed})"),
        ));
    };
    let span = chosen.span();
    let DeValue::Table(section) = chosen.into_inner() else {
        return Err((format!("env.{env}"), "must be a table".into()));
    };
    for key in NOT_INHERITED {
        doc.remove(*key);
    }
    let named = section.contains_key("name");
    // `route` and `routes` are one setting: an environment that sets either replaces both.
    if section.contains_key("route") || section.contains_key("routes") {
        doc.remove("route");
        doc.remove("routes");
    }
    for (key, value) in section {
        if key.get_ref() == "env" {
            return Err((format!("env.{env}.env"), "environments do not nest".into()));
        }
        doc.insert(key, value);
    }
    if !named && let Some(name) = doc.get("name") {
        let DeValue::String(top) = name.get_ref() else {
            return Ok(doc);
        };
        let renamed = format!("{top}-{env}");
        doc.insert(
            Spanned::new(0..0, "name".into()),
            Spanned::new(span, DeValue::String(renamed.into())),
        );
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(doc: &DeTable<'_>) -> Vec<String> {
        let mut k: Vec<String> = doc.keys().map(|k| k.get_ref().to_string()).collect();
        k.sort();
        k
    }

    fn string<'a>(doc: &'a DeTable<'_>, key: &str) -> &'a str {
        match doc.get(key).map(Spanned::get_ref) {
            Some(DeValue::String(s)) => s,
            other => panic!("{key}: {other:?}"),
        }
    }

    const TEXT: &str = r#"
name = "app"
main = "src/index.ts"
routes = ["example.com/*"]
[vars]
A = "top"
[[kv_namespaces]]
binding = "KV"
id = "top"
[triggers]
crons = ["* * * * *"]
[env.staging]
vars = { A = "staging" }
[env.prod]
name = "app-live"
main = "dist/index.js"
route = "live.example.com/*"
"#;

    #[test]
    fn an_environment_replaces_bindings_and_inherits_the_rest() {
        let doc = DeTable::parse(TEXT).unwrap().into_inner();
        let staging = select(doc.clone(), Some("staging")).unwrap();
        assert_eq!(
            keys(&staging),
            ["main", "name", "routes", "triggers", "vars"]
        );
        assert_eq!(string(&staging, "name"), "app-staging");
        let prod = select(doc.clone(), Some("prod")).unwrap();
        assert_eq!(keys(&prod), ["main", "name", "route", "triggers"]);
        assert_eq!(string(&prod, "name"), "app-live");
        assert_eq!(string(&prod, "main"), "dist/index.js");
        let top = select(doc.clone(), None).unwrap();
        assert_eq!(
            keys(&top),
            [
                "kv_namespaces",
                "main",
                "name",
                "routes",
                "triggers",
                "vars"
            ]
        );
        let (key, reason) = select(doc, Some("qa")).unwrap_err();
        assert_eq!(key, "env.qa");
        assert!(
            reason.contains("prod, staging") || reason.contains("staging, prod"),
            "{reason}"
        );
    }
}
