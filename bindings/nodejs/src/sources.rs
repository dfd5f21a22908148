//! The Node extensions' sources, made ready to run.
//!
//! `deno_node` is written in TypeScript and expects Deno's runtime around it: it reads the
//! global `Deno` namespace (`Deno.build`, `Deno.errors`, `Deno.env`, …) in places. An edge app
//! must not see a `Deno` global (libraries take it to mean "running on Deno" and reach for
//! Deno's APIs), so each of its files is given a `Deno` binding of its own that refers to
//! edge's private stand-in (`internals.edgeDeno`, made by `js/00_setup.js`), and TypeScript is
//! stripped with `deno_ast`. This is done once per process; every isolate shares the results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use deno_ast::{
    EmitOptions, ImportsNotUsedAsValues, MediaType, ModuleSpecifier, ParseParams, SourceMapOption,
    TranspileModuleOptions, TranspileOptions,
};
use deno_core::{Extension, ExtensionFileSource, ExtensionFileSourceCode};

/// The prepared text of each file, by specifier.
fn cache() -> &'static Mutex<HashMap<&'static str, Arc<str>>> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<str>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A file could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare {specifier}: {reason}")]
pub struct PrepareError {
    /// The file.
    pub specifier: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Replaces the sources of `deno_node` in `exts` (as its crate made them: each names its file
/// by its path on the build machine) with their prepared text (see the module docs); `read`
/// gives a file's text by that path (the binary's embedded copy). Call it on the same list the
/// snapshot is made from and every isolate restored from it; the first call does the work
/// (about a second for the whole of `deno_node`), later ones reuse it.
pub fn prepare(
    exts: &mut [Extension],
    read: impl Fn(&str) -> Result<Arc<str>, String>,
) -> Result<(), PrepareError> {
    for ext in exts.iter_mut().filter(|e| e.name == "deno_node") {
        for (files, esm) in [
            (&mut ext.esm_files, true),
            (&mut ext.lazy_loaded_esm_files, true),
            (&mut ext.lazy_loaded_js_files, false),
        ] {
            for file in files.to_mut() {
                let text = prepared(file, esm, &read)?;
                *file = ExtensionFileSource::new_computed(file.specifier, text);
            }
        }
    }
    Ok(())
}

fn prepared(
    file: &ExtensionFileSource,
    esm: bool,
    read: &impl Fn(&str) -> Result<Arc<str>, String>,
) -> Result<Arc<str>, PrepareError> {
    if let Some(done) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(file.specifier)
    {
        return Ok(done.clone());
    }
    let fail = |reason: String| PrepareError {
        specifier: file.specifier,
        reason,
    };
    // Deno's CommonJS loader reads files and opens native libraries: never loaded (see the file).
    if file.specifier == "node:module" {
        let text: Arc<str> = include_str!("../js/module.js").into();
        cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file.specifier, text.clone());
        return Ok(text);
    }
    // The file's name says whether it is TypeScript; its specifier may be an alias
    // (`node:process` is `process.ts`).
    #[allow(deprecated, reason = "the variant deno_core's macros still produce")]
    let (name, mut text) = match &file.code {
        ExtensionFileSourceCode::LoadedFromFsDuringSnapshot(path) => {
            (*path, read(path).map_err(fail)?.to_string())
        }
        _ => {
            let code = file.load().map_err(|e| fail(e.to_string()))?;
            (file.specifier, code.as_str().to_string())
        }
    };
    if name.ends_with(".ts") {
        text = strip_types(file.specifier, text).map_err(fail)?;
    }
    let text: Arc<str> = with_private_deno(&text, esm).map_err(fail)?.into();
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(file.specifier, text.clone());
    Ok(text)
}

/// TypeScript to JavaScript: types removed, nothing else changed.
fn strip_types(specifier: &str, text: String) -> Result<String, String> {
    let specifier = ModuleSpecifier::parse(specifier).map_err(|e| e.to_string())?;
    let parsed = deno_ast::parse_module(ParseParams {
        specifier,
        text: text.into(),
        media_type: MediaType::TypeScript,
        capture_tokens: false,
        scope_analysis: false,
        maybe_syntax: None,
    })
    .map_err(|e| e.to_string())?;
    let emitted = parsed
        .transpile(
            &TranspileOptions {
                imports_not_used_as_values: ImportsNotUsedAsValues::Remove,
                ..Default::default()
            },
            &TranspileModuleOptions::default(),
            &EmitOptions {
                source_map: SourceMapOption::None,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(emitted.into_source().text)
}

/// `text` with a `Deno` binding to edge's stand-in, on its first line so line numbers in stack
/// traces stay right. An ES module imports it; a lazily loaded script (one function expression,
/// run with `__bootstrap` in scope) declares it first thing in its body.
fn with_private_deno(text: &str, esm: bool) -> Result<String, String> {
    if !mentions_deno(text) {
        return Ok(text.to_string());
    }
    if esm {
        return Ok(format!(
            "import {{ internals as __edgeInternals }} from \"ext:core/mod.js\"; const Deno = __edgeInternals.edgeDeno; {text}"
        ));
    }
    let start = text
        .find("(function")
        .and_then(|at| text[at..].find('{').map(|brace| at + brace + 1))
        .ok_or("a lazily loaded script that is not a function expression")?;
    Ok(format!(
        "{} const Deno = __bootstrap.internals.edgeDeno; {}",
        &text[..start],
        &text[start..]
    ))
}

/// Whether `text` uses the `Deno` namespace (a `Deno.` or `Deno?.` that is not part of a longer
/// name or a string like `"Deno.internal"`: a stray match only adds an unused binding).
fn mentions_deno(text: &str) -> bool {
    text.match_indices("Deno").any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + 4..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || "_$.\"'`".contains(c))
            && matches!(after, Some('.') | Some('?'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_goes_where_each_kind_of_file_reads_it() {
        let esm = with_private_deno("export const a = Deno.build;\n", true).unwrap();
        assert!(esm.starts_with("import { internals as __edgeInternals }"));
        assert_eq!(esm.lines().count(), 1);
        let script =
            with_private_deno("// c\n(function () {\nreturn Deno.pid;\n})();\n", false).unwrap();
        assert!(script.starts_with(
            "// c\n(function () { const Deno = __bootstrap.internals.edgeDeno; \nreturn"
        ));
        assert_eq!(
            with_private_deno("const x = 1;", true).unwrap(),
            "const x = 1;"
        );
        assert!(!mentions_deno("SymbolFor(\"Deno.internal\") + MyDeno.x"));
        assert!(mentions_deno("if (Deno?.build) {}"));
    }

    /// Every file of deno_node, prepared, is valid JavaScript of its kind (a module, or a
    /// script whose one expression is a function).
    #[test]
    fn every_prepared_file_parses() {
        let mut exts = crate::extensions();
        prepare(&mut exts, |path| {
            std::fs::read_to_string(path)
                .map(Arc::from)
                .map_err(|e| e.to_string())
        })
        .unwrap();
        let node = exts.iter().find(|e| e.name == "deno_node").unwrap();
        let mut bad = Vec::new();
        for (files, esm) in [
            (&node.esm_files, true),
            (&node.lazy_loaded_esm_files, true),
            (&node.lazy_loaded_js_files, false),
        ] {
            for file in files.iter() {
                let text = file.load().unwrap().as_str().to_string();
                let specifier = ModuleSpecifier::parse("file:///prepared.js").unwrap();
                let params = ParseParams {
                    specifier,
                    text: text.into(),
                    media_type: MediaType::JavaScript,
                    capture_tokens: false,
                    scope_analysis: false,
                    maybe_syntax: None,
                };
                let parsed = if esm {
                    deno_ast::parse_module(params).map(|_| ())
                } else {
                    deno_ast::parse_script(params).map(|_| ())
                };
                if let Err(e) = parsed {
                    bad.push(format!("{}: {e}", file.specifier));
                }
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn types_are_stripped() {
        let js = strip_types(
            "ext:deno_node/a.ts",
            "const a: number = 1; export { a };".into(),
        )
        .unwrap();
        assert!(js.contains("const a = 1"), "{js}");
    }
}
