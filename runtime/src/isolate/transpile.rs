//! What a module's source goes through before the engine sees it. TypeScript and JSX are
//! transpiled to JavaScript with `deno_ast` (types stripped, no type checking, as esbuild and
//! Deno do), with an inline source map so stack traces and load errors point at the original
//! lines. The work is done once per content: results are kept process-wide by a hash of the
//! module's URL and text, so another isolate or a reload that did not change the file reuses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use deno_ast::{
    DecoratorsTranspileOption, EmitOptions, ImportsNotUsedAsValues, MediaType, ParseParams,
    SourceMapOption, TranspileModuleOptions, TranspileOptions,
};
use deno_core::ModuleSpecifier;
use sha2::{Digest, Sha256};

use super::nesting;

/// Most bytes of transpiled code kept; past it the cache starts again empty.
const CACHE_BYTES: usize = 64 << 20;

/// Whether a module of this media type is transpiled (else the engine takes it as it is).
pub(crate) fn needs_transpiling(media_type: MediaType) -> bool {
    matches!(
        media_type,
        MediaType::TypeScript | MediaType::Mts | MediaType::Tsx | MediaType::Jsx
    )
}

/// A module's JavaScript: `code` transpiled if its media type needs it (see
/// [`needs_transpiling`]); else `code` itself. On the QuickJS build, regular expression literals
/// are also spelled so its import scanner reads the module right (see [`quickjs_safe`]). The
/// error names the file, line and column.
pub(crate) fn javascript(
    specifier: &ModuleSpecifier,
    media_type: MediaType,
    code: &[u8],
) -> Result<Arc<[u8]>, String> {
    if !needs_transpiling(media_type) && !cfg!(feature = "quickjs") {
        return Ok(code.into());
    }
    let key = cache_key(specifier, media_type, code);
    if let Some(done) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(done.clone());
    }
    let text =
        std::str::from_utf8(code).map_err(|e| format!("{specifier}: not UTF-8 text ({e})"))?;
    let js = if needs_transpiling(media_type) {
        transpile(specifier, media_type, text)?
    } else {
        text.to_string()
    };
    let js: Arc<[u8]> = quickjs_safe(js).into_bytes().into();
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let held: usize = cache.values().map(|v| v.len()).sum();
    if held + js.len() > CACHE_BYTES {
        cache.clear();
    }
    cache.insert(key, js.clone());
    Ok(js)
}

fn transpile(
    specifier: &ModuleSpecifier,
    media_type: MediaType,
    text: &str,
) -> Result<String, String> {
    if nesting::too_deep_to_parse(text, media_type) {
        return Err(format!(
            "{specifier}: nests deeper than {} levels; edge does not transpile it",
            nesting::MAX_NESTING
        ));
    }
    let parsed = deno_ast::parse_module(ParseParams {
        specifier: specifier.clone(),
        text: text.into(),
        media_type,
        capture_tokens: false,
        scope_analysis: false,
        maybe_syntax: None,
    })
    .map_err(|e| e.to_string())?;
    if nesting::too_deep(&parsed.program()) {
        nesting::dispose(parsed, text.len());
        return Err(format!(
            "{specifier}: nests deeper than {} levels; edge does not transpile it",
            nesting::MAX_NESTING
        ));
    }
    let emitted = parsed
        .transpile(
            &TranspileOptions {
                imports_not_used_as_values: ImportsNotUsedAsValues::Remove,
                decorators: DecoratorsTranspileOption::Ecma,
                ..Default::default()
            },
            &TranspileModuleOptions::default(),
            &EmitOptions {
                source_map: SourceMapOption::Inline,
                inline_sources: true,
                ..Default::default()
            },
        )
        .map_err(|e| format!("{specifier}: {e}"))?;
    Ok(emitted.into_source().text)
}

/// The QuickJS facade finds a module's imports with a scanner that does not know regular
/// expression literals: a quote or backtick inside one (`/[`]/`) makes it skip the rest of the
/// module as a string, miss the imports after it, and then fail to link. Spelling those
/// characters (and `/`) as `\xNN` escapes inside each literal means the same pattern and leaves
/// the scanner nothing to trip on. V8 needs none of this.
#[cfg(feature = "quickjs")]
fn quickjs_safe(js: String) -> String {
    use deno_ast::swc::parser::token::Token;
    // Only the parser tells a regular expression from a division; a module that does not
    // parse, or nests too deep to parse safely, is left for the engine to report.
    if nesting::too_deep_to_parse(&js, MediaType::JavaScript) {
        return js;
    }
    let Ok(parsed) = deno_ast::parse_module(ParseParams {
        specifier: ModuleSpecifier::parse("file:///module.js").expect("a valid URL"),
        text: js.as_str().into(),
        media_type: MediaType::JavaScript,
        capture_tokens: true,
        scope_analysis: false,
        maybe_syntax: None,
    }) else {
        return js;
    };
    if nesting::too_deep(&parsed.program()) {
        // Left as it is: the engine reports what it makes of it.
        nesting::dispose(parsed, js.len());
        return js;
    }
    let start = deno_ast::StartSourcePos::START_SOURCE_POS.as_byte_pos().0 as usize;
    let regexes: Vec<std::ops::Range<usize>> = parsed
        .tokens()
        .iter()
        .filter(|t| matches!(t.token, Token::Regex(..)))
        .map(|t| (t.span.lo.0 as usize - start)..(t.span.hi.0 as usize - start))
        .filter(|range| {
            js.get(range.clone())
                .is_some_and(|r| r.bytes().any(|b| matches!(b, b'`' | b'\'' | b'"' | b'/')))
        })
        .collect();
    drop(parsed);
    if regexes.is_empty() {
        return js;
    }
    let mut out = String::with_capacity(js.len() + 16 * regexes.len());
    let mut at = 0;
    for range in regexes {
        out.push_str(&js[at..range.start]);
        out.push_str(&escape_regex(&js[range.clone()]));
        at = range.end;
    }
    out.push_str(&js[at..]);
    out
}

#[cfg(not(feature = "quickjs"))]
fn quickjs_safe(js: String) -> String {
    js
}

/// A regular expression literal (`/body/flags`) with every quote, backtick and slash of its
/// body written as a `\xNN` escape (escaped ones too: `\'` becomes `\x27`).
#[cfg_attr(not(feature = "quickjs"), allow(dead_code))]
fn escape_regex(literal: &str) -> String {
    let Some(end) = literal.rfind('/').filter(|&end| end > 0) else {
        return literal.to_string();
    };
    let (body, flags) = (&literal[1..end], &literal[end..]);
    let escape = |c: char| matches!(c, '`' | '\'' | '"' | '/');
    let mut out = String::with_capacity(literal.len() + 8);
    out.push('/');
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) if escape(next) => out.push_str(&format!("\\x{:02x}", next as u32)),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            c if escape(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str(flags);
    out
}

fn cache_key(specifier: &ModuleSpecifier, media_type: MediaType, code: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(specifier.as_str().as_bytes());
    hash.update([0]);
    hash.update(media_type.as_ts_extension().as_bytes());
    hash.update([0]);
    hash.update(code);
    hash.finalize().into()
}

/// Transpiled modules by [`cache_key`].
type Cache = Mutex<HashMap<[u8; 32], Arc<[u8]>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(name: &str) -> ModuleSpecifier {
        ModuleSpecifier::parse(&format!("file:///app/{name}")).unwrap()
    }

    #[test]
    fn regex_literals_keep_their_meaning_without_quotes() {
        assert_eq!(escape_regex("/[`]/"), "/[\\x60]/");
        assert_eq!(escape_regex("/a\\/b'c\"/gu"), "/a\\x2fb\\x27c\\x22/gu");
        assert_eq!(escape_regex("/\\\\`/"), "/\\\\\\x60/");
        assert_eq!(escape_regex("/\\'/"), "/\\x27/");
        assert_eq!(escape_regex("/plain\\d+/i"), "/plain\\d+/i");
    }

    #[cfg(feature = "quickjs")]
    #[test]
    fn only_regex_literals_are_respelled() {
        let js = "const a = 4 / 2 / 1; const r = /[`'\"]/g; const s = '/`/';\n";
        assert_eq!(
            quickjs_safe(js.to_string()),
            "const a = 4 / 2 / 1; const r = /[\\x60\\x27\\x22]/g; const s = '/`/';\n"
        );
    }

    #[test]
    fn typescript_loses_its_types_and_keeps_its_lines() {
        let ts = "interface P { x: number }\nenum E { A = 1 }\nexport const f = (p: P): number =>\n  p.x + E.A;\n";
        let js = javascript(&url("a.ts"), MediaType::TypeScript, ts.as_bytes()).unwrap();
        let js = std::str::from_utf8(&js).unwrap();
        assert!(
            !js.contains("interface") && !js.contains(": number"),
            "{js}"
        );
        assert!(
            js.contains("sourceMappingURL=data:application/json"),
            "{js}"
        );
        // Cached: the same text gives the same allocation back.
        let again = javascript(&url("a.ts"), MediaType::TypeScript, ts.as_bytes()).unwrap();
        assert_eq!(std::str::from_utf8(&again).unwrap(), js);
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let e = javascript(&url("bad.ts"), MediaType::TypeScript, b"const x: = 1;\n").unwrap_err();
        assert!(e.contains("file:///app/bad.ts:1:"), "{e}");
    }

    #[test]
    fn jsx_becomes_calls() {
        let js = javascript(
            &url("v.tsx"),
            MediaType::Tsx,
            b"export const v = <b>hi</b>;\n",
        )
        .unwrap();
        assert!(
            std::str::from_utf8(&js)
                .unwrap()
                .contains("React.createElement")
        );
    }
}
