//! Workers' module rules: what a plain `import x from "./file"` (no import attribute) gives
//! for each kind of file, as wrangler's default rules do. JavaScript and TypeScript are
//! modules; `.txt`, `.html`, `.sql` are Text (the default export is the file's text); `.bin`
//! is Data (an `ArrayBuffer`); `.wasm` is CompiledWasm (a `WebAssembly.Module`, to instantiate
//! with imports); `.json` is its parsed value, as esbuild imports it. The non-JavaScript kinds
//! become small JavaScript modules made here; bytes reach them through deno_core's own
//! `bytes` import, never as source text.

use std::sync::Arc;

use deno_core::ModuleSpecifier;

/// The file types a plain import accepts, for the error that names them.
pub(crate) const SUPPORTED: &str =
    ".js, .mjs, .cjs, .ts, .mts, .jsx, .tsx, .json, .txt, .html, .sql, .bin or .wasm";

/// The query on a file's URL that marks the import of its bytes by a module made here.
const BYTES_QUERY: &str = "edge-bytes";

/// What a plain import of a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A JavaScript (or TypeScript, JSX) module.
    JavaScript,
    /// JSON: the default export is the parsed value.
    Json,
    /// Text: the default export is the file's text.
    Text,
    /// Data: the default export is an `ArrayBuffer` of the file's bytes.
    Data,
    /// CompiledWasm: the default export is a `WebAssembly.Module`.
    CompiledWasm,
}

/// The rule for a file's (lower-case) extension, if a plain import accepts it.
pub(crate) fn rule_for(ext: &str) -> Option<Rule> {
    Some(match ext {
        "js" | "mjs" | "cjs" | "ts" | "mts" | "tsx" | "jsx" => Rule::JavaScript,
        "json" => Rule::Json,
        "txt" | "html" | "sql" => Rule::Text,
        "bin" => Rule::Data,
        "wasm" => Rule::CompiledWasm,
        _ => return None,
    })
}

/// The JavaScript module that stands for a file of a non-JavaScript `rule`: its text or JSON
/// inline, or an import of its bytes. A file that is not UTF-8 text (Text) or not JSON (Json)
/// is an error naming it, with the line and column for JSON.
pub(crate) fn module_for(
    rule: Rule,
    specifier: &ModuleSpecifier,
    raw: &[u8],
) -> Result<Arc<[u8]>, String> {
    let text =
        || std::str::from_utf8(raw).map_err(|e| format!("{specifier}: not UTF-8 text ({e})"));
    let literal = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let code = match rule {
        Rule::JavaScript => return Ok(raw.into()),
        Rule::Text => format!("export default {};\n", literal(text()?)),
        Rule::Json => {
            let text = text()?;
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                format!("{specifier}:{}:{}: invalid JSON: {e}", e.line(), e.column())
            })?;
            format!("export default JSON.parse({});\n", literal(text))
        }
        Rule::Data | Rule::CompiledWasm => {
            let mut bytes = specifier.clone();
            bytes.set_query(Some(BYTES_QUERY));
            let value = if rule == Rule::Data {
                "b.buffer.byteLength === b.byteLength ? b.buffer : b.slice().buffer"
            } else {
                "new WebAssembly.Module(b)"
            };
            format!(
                "import b from {} with {{ type: \"bytes\" }};\nexport default {value};\n",
                literal(bytes.as_str())
            )
        }
    };
    Ok(code.into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(name: &str) -> ModuleSpecifier {
        ModuleSpecifier::parse(&format!("file:///app/{name}")).unwrap()
    }

    fn module(rule: Rule, name: &str, raw: &[u8]) -> String {
        String::from_utf8(module_for(rule, &url(name), raw).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn each_kind_of_file_becomes_a_module() {
        assert_eq!(rule_for("html"), Some(Rule::Text));
        assert_eq!(rule_for("wasm"), Some(Rule::CompiledWasm));
        assert_eq!(rule_for("css"), None);
        assert_eq!(
            module(Rule::Text, "a.txt", "line \"1\"\n\u{2028}".as_bytes()),
            "export default \"line \\\"1\\\"\\n\u{2028}\";\n"
        );
        assert_eq!(
            module(Rule::Json, "a.json", b"{\"a\": [1]}"),
            "export default JSON.parse(\"{\\\"a\\\": [1]}\");\n"
        );
        assert!(module(Rule::CompiledWasm, "m.wasm", b"\0asm").contains(
            "import b from \"file:///app/m.wasm?edge-bytes\" with { type: \"bytes\" };\nexport default new WebAssembly.Module(b);"
        ));
    }

    #[test]
    fn bad_json_and_bad_text_name_the_file() {
        let e = module_for(Rule::Json, &url("a.json"), b"{\n  \"a\": ,\n}").unwrap_err();
        assert!(e.starts_with("file:///app/a.json:2:"), "{e}");
        let e = module_for(Rule::Text, &url("a.txt"), b"\xff").unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
