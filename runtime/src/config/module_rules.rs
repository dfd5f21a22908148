//! `[[rules]]`: which files a plain `import` takes as which kind of module, as wrangler reads
//! them (`type` and `globs`, matched against the file's path relative to the folder of
//! `main`, or to the app folder for a file outside it; `**` crosses folders, `*` does not;
//! `ESModule`/`CommonJS` rules leave `node_modules` alone). An app's rules are tried in order before the
//! built-in ones (`.txt`/`.html`/`.sql` Text, `.bin` Data, `.wasm` CompiledWasm, …), so a rule
//! can also change what a built-in extension means. `fallthrough` is accepted; edge takes the
//! first rule that matches a file, which is what wrangler's rules come to for one file.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use super::fields::File;

/// What a rule makes of the files it matches (wrangler's module types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ModuleKind {
    /// An ES module.
    ESModule,
    /// A CommonJS module (`module.exports`, `require`), wrapped as esbuild wraps one.
    CommonJS,
    /// A `WebAssembly.Module` (the default export).
    CompiledWasm,
    /// The file's text (the default export).
    Text,
    /// An `ArrayBuffer` of the file's bytes (the default export).
    Data,
}

/// One `[[rules]]` entry, its globs compiled.
#[derive(Clone, Debug)]
pub struct ModuleRule {
    /// What matching files are.
    pub kind: ModuleKind,
    globs: Vec<glob::Pattern>,
}

impl ModuleRule {
    /// Whether `relative` (a path relative to the folder of `main`) matches one of the globs.
    pub fn matches(&self, relative: &Path) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.globs
            .iter()
            .any(|g| g.matches_path_with(relative, options))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "type")]
    kind: String,
    globs: Vec<String>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as wrangler has it; the first matching rule wins"
    )]
    fallthrough: bool,
}

/// The most rules, globs per rule, and wildcards per glob an app may have: each import of a
/// file is matched against them before the app's code runs (a glob of many `*` backtracks).
const MAX_RULES: usize = 64;
const MAX_GLOBS: usize = 64;
const MAX_WILDCARDS: usize = 8;

/// The kinds a rule may name, for the error that lists them.
const KINDS: &str = "ESModule, CommonJS, CompiledWasm, Text or Data";

/// `rules`, checked and compiled; errors name `rules[i]` and what is wrong.
pub(super) fn module_rules(raw: Vec<RawRule>, file: File) -> Result<Vec<ModuleRule>, ConfigError> {
    if raw.len() > MAX_RULES {
        return Err(file.invalid("rules", format!("{} rules; at most {MAX_RULES}", raw.len())));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let kind = ModuleKind::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new(&rule.kind))
            .map_err(|_| {
                file.invalid(
                    &format!("rules[{i}].type"),
                    format!("{:?} is not a module type edge runs ({KINDS})", rule.kind),
                )
            })?;
            if rule.globs.is_empty() || rule.globs.len() > MAX_GLOBS {
                return Err(file.invalid(
                    &format!("rules[{i}].globs"),
                    format!(
                        "has {} globs: give 1 to {MAX_GLOBS}, e.g. [\"**/*.md\"]",
                        rule.globs.len()
                    ),
                ));
            }
            if let Some((j, g)) = rule.globs.iter().enumerate().find(|(_, g)| {
                g.len() > 1024 || g.matches(['*', '?', '[']).count() > MAX_WILDCARDS
            }) {
                return Err(file.invalid(
                    &format!("rules[{i}].globs[{j}]"),
                    format!("{g:?}: at most {MAX_WILDCARDS} wildcards (`*`, `?`, `[`) and 1024 characters"),
                ));
            }
            let globs = rule
                .globs
                .iter()
                .enumerate()
                .map(|(j, g)| {
                    glob::Pattern::new(g).map_err(|e| {
                        file.invalid(&format!("rules[{i}].globs[{j}]"), format!("{g:?}: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(ModuleRule { kind, globs })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, globs: &[&str]) -> Result<ModuleRule, ConfigError> {
        let raw = RawRule {
            kind: kind.into(),
            globs: globs.iter().map(|g| g.to_string()).collect(),
            fallthrough: false,
        };
        module_rules(vec![raw], File(Path::new("/app/wrangler.toml"))).map(|mut v| v.remove(0))
    }

    #[test]
    fn globs_match_as_wrangler_matches_them() {
        let md = rule("Text", &["**/*.md"]).unwrap();
        assert_eq!(md.kind, ModuleKind::Text);
        assert!(md.matches(Path::new("post.md")));
        assert!(md.matches(Path::new("content/2024/post.md")));
        assert!(!md.matches(Path::new("post.mdx")));
        let top = rule("Data", &["*.dat"]).unwrap();
        assert!(top.matches(Path::new("a.dat")));
        assert!(!top.matches(Path::new("sub/a.dat")));
    }

    #[test]
    fn bad_rules_name_the_entry() {
        let e = rule("PythonModule", &["*.py"]).unwrap_err().to_string();
        assert!(e.contains("rules[0].type") && e.contains("ESModule"), "{e}");
        let e = rule("Text", &[]).unwrap_err().to_string();
        assert!(e.contains("rules[0].globs"), "{e}");
        let e = rule("Text", &["[a"]).unwrap_err().to_string();
        assert!(e.contains("rules[0].globs[0]"), "{e}");
        let e = rule("Text", &["*a*a*a*a*a*a*a*a*a*b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 8 wildcards"), "{e}");
    }
}
