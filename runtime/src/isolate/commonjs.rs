//! CommonJS modules (`module.exports`, `exports.x`, `require("…")`), run as wrangler's
//! esbuild step runs them: inside an ES module, in strict mode, with esbuild's interop
//! (`import x from "cjs"` is `module.exports`, or its `default` when `__esModule` is set;
//! `import { name } from "cjs"` works for the names a static analysis finds, as Node's
//! cjs-module-lexer finds them).
//!
//! A CommonJS file is two ES modules to the engine. Its *view* (`<url>?edge-cjs`, see [`view`])
//! holds its code inside a function taking `exports, require, module, __filename, __dirname`,
//! run once, the first time it is required or imported, in the order of the `require` calls
//! (as in Node; a cycle sees a partly filled `module.exports`). Every `require("literal")` that
//! resolves to a file is imported by the view (as that file's view, see [`view_of`]), so the
//! engine loads it with the rest of the graph. Its plain URL is the *facade* that `import`
//! reaches (see [`facade`]). A `require` of a name that does not resolve (an optional
//! dependency, a Node built-in) or of a computed name throws when it runs, so `try {
//! require("x") } catch {}` works.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use deno_ast::swc::ast::{CallExpr, Callee, Expr, Lit, MemberExpr, MemberProp, UnaryExpr, UnaryOp};
use deno_ast::swc::ecma_visit::{Visit, VisitWith};
use deno_ast::{MediaType, ParseParams};
use deno_core::ModuleSpecifier;

use super::nesting;

/// What a CommonJS module needs and gives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// The literal names it `require`s, in order of first use, each once.
    pub(crate) requires: Vec<String>,
    /// The names it exports (`exports.a = …`, `module.exports = { a }`), as found statically.
    pub(crate) exports: Vec<String>,
    /// The modules whose exports it passes on (`module.exports = require("./impl")`).
    pub(crate) reexports: Vec<String>,
}

/// `text`'s CommonJS analysis, or `None` when it is an ES module (it has `import` or `export`
/// declarations) or shows no sign of CommonJS (no `require(…)`, `module.exports`, `exports.…`
/// or `typeof module`/`typeof exports`). With `force` (a `.cjs` file) any script is CommonJS.
/// A file that does not parse, or nests too deep to parse safely, is left to the engine
/// (`None`), which reports what it makes of it.
///
/// Analyses are kept process-wide by content (a file's facade and view both need one, and so
/// does every version that did not change it).
pub(crate) fn analyze(specifier: &ModuleSpecifier, text: &str, force: bool) -> Option<Analysis> {
    use sha2::{Digest, Sha256};
    /// The analyses by content, and the bytes they hold.
    type Cache = Mutex<(HashMap<[u8; 32], Option<Analysis>>, usize)>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    /// Most bytes of analyses kept; past it the cache starts again empty.
    const MAX_BYTES: usize = 16 << 20;
    let mut hash = Sha256::new();
    hash.update([u8::from(force)]);
    hash.update(text.as_bytes());
    let key: [u8; 32] = hash.finalize().into();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).0.get(&key) {
        return found.clone();
    }
    let found = analyze_text(specifier, text, force);
    let size = 64
        + found.as_ref().map_or(0, |a| {
            [&a.requires, &a.exports, &a.reexports]
                .iter()
                .flat_map(|list| list.iter())
                .map(|s| s.len() + 24)
                .sum()
        });
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.1 + size > MAX_BYTES {
        cache.0.clear();
        cache.1 = 0;
    }
    cache.0.insert(key, found.clone());
    cache.1 += size;
    found
}

fn analyze_text(specifier: &ModuleSpecifier, text: &str, force: bool) -> Option<Analysis> {
    if !force && !text.contains("require") && !text.contains("exports") {
        return None;
    }
    if nesting::too_deep_to_parse(text, MediaType::JavaScript) {
        return None;
    }
    let parsed = deno_ast::parse_program(ParseParams {
        specifier: specifier.clone(),
        text: text.into(),
        media_type: MediaType::Cjs,
        capture_tokens: false,
        scope_analysis: false,
        maybe_syntax: None,
    })
    .ok()?;
    if nesting::too_deep(&parsed.program()) {
        // Dropped on a stack grown for it (no other reference to the tree is left).
        nesting::dispose(parsed, text.len());
        return None;
    }
    if !parsed.compute_is_script() {
        return None;
    }
    let mut signs = Signs::default();
    parsed.program().visit_with(&mut signs);
    if !force && !signs.commonjs {
        return None;
    }
    let cjs = parsed.analyze_cjs();
    // Names beyond these are still on the default export; only the facade's list is bounded.
    let exports = cjs
        .exports
        .into_iter()
        .filter(|name| name.len() <= MAX_NAME)
        .take(MAX_EXPORTS)
        .collect();
    let reexports = cjs.reexports.into_iter().take(16).collect();
    Some(Analysis {
        requires: signs.requires,
        exports,
        reexports,
    })
}

/// The most named exports a facade gives, and the longest name.
const MAX_EXPORTS: usize = 4_096;
const MAX_NAME: usize = 256;

/// The most distinct names one file's `require`s are resolved for at load (each costs file
/// lookups before the app's code runs); a `require` of any other throws when it runs.
const MAX_REQUIRES: usize = 4_096;

/// Finds `require("literal")` calls and whether the module uses CommonJS at all.
#[derive(Default)]
struct Signs {
    requires: Vec<String>,
    seen: std::collections::HashSet<String>,
    commonjs: bool,
}

impl Visit for Signs {
    fn visit_call_expr(&mut self, call: &CallExpr) {
        if let Callee::Expr(callee) = &call.callee
            && is_ident(callee, "require")
        {
            self.commonjs = true;
            if let [arg] = call.args.as_slice()
                && arg.spread.is_none()
                && let Some(name) = literal(&arg.expr)
                && self.requires.len() < MAX_REQUIRES
                && self.seen.insert(name.clone())
            {
                self.requires.push(name);
            }
        }
        call.visit_children_with(self);
    }

    fn visit_member_expr(&mut self, member: &MemberExpr) {
        let module_exports = is_ident(&member.obj, "module")
            && matches!(&member.prop, MemberProp::Ident(p) if &*p.sym == "exports");
        if module_exports || is_ident(&member.obj, "exports") {
            self.commonjs = true;
        }
        member.visit_children_with(self);
    }

    fn visit_expr(&mut self, expr: &Expr) {
        // `exports` or `module` passed on as they are (`__exportStar(require("./a"), exports)`,
        // a types-only file's `Object.defineProperty(exports, "__esModule", …)`).
        if is_ident(expr, "exports") || is_ident(expr, "module") {
            self.commonjs = true;
        }
        expr.visit_children_with(self);
    }

    fn visit_unary_expr(&mut self, unary: &UnaryExpr) {
        if unary.op == UnaryOp::TypeOf
            && (is_ident(&unary.arg, "module") || is_ident(&unary.arg, "exports"))
        {
            self.commonjs = true;
        }
        unary.visit_children_with(self);
    }
}

fn is_ident(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Ident(id) if &*id.sym == name)
}

/// The text of a string literal or a template without substitutions.
fn literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(Lit::Str(s)) => s.value.as_str().map(str::to_string),
        Expr::Tpl(t) if t.exprs.is_empty() => t
            .quasis
            .first()
            .and_then(|q| q.cooked.as_ref())
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// The query that names a file's CommonJS view (see [`view`]).
pub(crate) const VIEW_QUERY: &str = "edge-cjs";

/// `url` with the query of its CommonJS view.
pub(crate) fn view_url(url: &ModuleSpecifier) -> ModuleSpecifier {
    let mut view = url.clone();
    view.set_query(Some(VIEW_QUERY));
    view
}

/// Whether `url` names a CommonJS view.
pub(crate) fn is_view(url: &ModuleSpecifier) -> bool {
    url.query() == Some(VIEW_QUERY)
}

/// The query that names a CommonJS file's facade for importers in esbuild's "node mode"
/// (`.mjs`/`.mts` files and files of a `"type": "module"` package), whose default import is
/// `module.exports` even when `__esModule` is set.
pub(crate) const NODE_QUERY: &str = "edge-node";

/// Whether `url` names a node-mode facade.
pub(crate) fn is_node_facade(url: &ModuleSpecifier) -> bool {
    url.query() == Some(NODE_QUERY)
}

/// A `require` name that resolved.
#[derive(Debug, Clone)]
pub(crate) struct Dep {
    /// The name as written in `require(…)`.
    pub(crate) name: String,
    /// The file's URL; `None` when a package's `browser` map sets it to `false` (then
    /// `require` gives an empty object, as esbuild does).
    pub(crate) url: Option<ModuleSpecifier>,
}

/// The CommonJS view of a CommonJS file (`<url>?edge-cjs`): its code inside a function,
/// run by the exported `__edge_cjs()` the first time it is called, which returns
/// `module.exports`. It runs nothing when the engine evaluates it, so the order in which
/// modules run is the order of `require` calls, as in Node (a cycle sees a partly filled
/// `module.exports`). It imports the CommonJS views of the files it requires. The code keeps
/// its lines (it starts on the first line), so stack traces point at the file as written.
/// `file` is what `__filename` gives: the file's path in the app folder, from `/` (where the
/// node keeps apps is not the app's business).
pub(crate) fn view(file: &str, code: &str, deps: &[Dep]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let dir = match file.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    };
    // A `#!` line is a comment to Node; in a function body it would be a syntax error.
    let code = match code.strip_prefix("#!") {
        Some(rest) => format!("//{rest}"),
        None => code.to_string(),
    };
    let mut out = String::with_capacity(code.len() + 2048);
    out.push_str("function __edge_body(exports, require, module, __filename, __dirname) {");
    out.push_str(&code);
    out.push_str("\n}\n");
    for (i, dep) in deps.iter().enumerate() {
        match &dep.url {
            // A Node.js built-in: what `require` gives is its module object (the default
            // export of Deno's implementation of it).
            Some(url) if url.scheme() == "node" => {
                let _ = writeln!(out, "import * as __edge_n{i} from {};", q(url.as_str()));
            }
            Some(url) => {
                let _ = writeln!(
                    out,
                    "import {{ __edge_cjs as __edge_d{i} }} from {};",
                    q(view_url(url).as_str())
                );
            }
            None => {}
        }
    }
    out.push_str("var __edge_m, __edge_ignored;\nfunction __edge_require(id) {\n  switch (id) {\n");
    for (i, dep) in deps.iter().enumerate() {
        let value = match &dep.url {
            Some(url) if url.scheme() == "node" => {
                format!("(\"default\" in __edge_n{i} ? __edge_n{i}.default : __edge_n{i})")
            }
            Some(_) => format!("__edge_d{i}()"),
            None => "(__edge_ignored ??= {})".to_string(),
        };
        let _ = writeln!(out, "    case {}: return {value};", q(&dep.name));
    }
    let _ = write!(
        out,
        r#"  }}
  const e = new Error(typeof id === "string"
    ? "Cannot find module '" + id + "' from " + {file}
      + (/^(node:|(assert|async_hooks|buffer|child_process|crypto|diagnostics_channel|dns|events|fs|http|https|net|os|path|process|querystring|stream|string_decoder|timers|tls|url|util|worker_threads|zlib)(\/|$))/.test(id)
        ? ": a Node.js built-in module this app cannot use (with compatibility_flags = [\"nodejs_compat\"], edge provides assert, async_hooks, buffer, crypto, diagnostics_channel, events, path, process, punycode, querystring, stream, string_decoder, timers, url, util, zlib; not fs, net, child_process or others that reach the host)"
        : ": require() finds files in the app folder named by a string literal")
    : "require() takes a module name, not " + typeof id);
  e.code = "MODULE_NOT_FOUND";
  throw e;
}}
export function __edge_cjs() {{
  if (__edge_m === undefined) {{
    __edge_m = {{ exports: {{}}, id: {file}, filename: {file}, loaded: false, children: [], paths: [], require: __edge_require }};
    __edge_body.call(__edge_m.exports, __edge_m.exports, __edge_require, __edge_m, {file}, {dir});
    __edge_m.loaded = true;
  }}
  return __edge_m.exports;
}}
"#,
        file = q(file),
        dir = q(dir),
    );
    out
}

/// The ES module a CommonJS file is to `import` (its plain URL): it runs the file (through
/// its CommonJS view at `view`) and exports `module.exports` as `default` (or its `default`
/// when `__esModule` is set, as esbuild does) and each name in `exports` (identifiers only;
/// `default` and `__esModule` are left out). In `node` mode the default export is
/// `module.exports` whatever `__esModule` says (see [`NODE_QUERY`]).
pub(crate) fn facade(view: &ModuleSpecifier, exports: &[String], node: bool) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let default = if node {
        "__edge_e"
    } else {
        "__edge_e != null && __edge_e.__esModule && \"default\" in Object(__edge_e) ? __edge_e.default : __edge_e"
    };
    let mut out = format!(
        "import {{ __edge_cjs }} from {};\nconst __edge_e = __edge_cjs();\nexport default {default};\n",
        q(view.as_str())
    );
    let mut names: Vec<&str> = exports
        .iter()
        .map(String::as_str)
        .filter(|n| is_identifier(n) && !matches!(*n, "default" | "__esModule"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "const __edge_x{i} = __edge_e == null ? undefined : __edge_e[{}];\nexport {{ __edge_x{i} as {name} }};",
            q(name)
        );
    }
    out
}

/// The CommonJS view of a file that is not CommonJS (`plain` is its URL): for an ES module
/// (`module`), an object of its exports with `__esModule` set, as esbuild's `require` of an ES
/// module gives; for a file made a module by a rule (JSON, text, data, wasm), its value.
pub(crate) fn view_of(plain: &ModuleSpecifier, module: bool) -> String {
    let q = serde_json::to_string(plain.as_str()).unwrap_or_default();
    if module {
        format!(
            r#"import * as ns from {q};
var o;
export function __edge_cjs() {{
  if (o === undefined) {{
    o = Object.defineProperty({{}}, "__esModule", {{ value: true }});
    for (const k of Object.keys(ns)) Object.defineProperty(o, k, {{ get: () => ns[k], enumerable: true }});
  }}
  return o;
}}
"#
        )
    } else {
        format!("import v from {q};\nexport function __edge_cjs() {{ return v; }}\n")
    }
}

/// Whether `name` is an identifier name (what an `export { x as name }` may use).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(name: &str) -> ModuleSpecifier {
        ModuleSpecifier::parse(&format!("file:///app/{name}")).unwrap()
    }

    #[test]
    fn es_modules_and_plain_scripts_are_not_commonjs() {
        let u = url("a.js");
        assert_eq!(
            analyze(&u, "export const require = 1; exports.a = 1;", false),
            None
        );
        assert_eq!(
            analyze(&u, "import x from './y'; module.exports = x;", false),
            None
        );
        assert_eq!(analyze(&u, "const a = 1;", false), None);
        assert_eq!(analyze(&u, "const requirement = 'exports';", false), None);
        // A TypeScript types-only file.
        assert!(
            analyze(
                &u,
                "\"use strict\";\nObject.defineProperty(exports, \"__esModule\", { value: true });\n",
                false
            )
            .is_some()
        );
        assert!(analyze(&u, "const a = 1;", true).is_some());
    }

    #[test]
    fn requires_and_exports_are_found() {
        let got = analyze(
            &url("a.js"),
            "'use strict';\nconst a = require('./a');\nconst b = require(`b`);\nrequire(name);\nrequire('./a');\nexports.one = 1;\nmodule.exports.two = 2;\nObject.defineProperty(exports, 'three', { enumerable: true, get() { return 3 } });\n",
            false,
        )
        .unwrap();
        assert_eq!(got.requires, ["./a", "b"]);
        assert_eq!(got.exports, ["one", "three", "two"]);
        let got = analyze(&url("b.js"), "module.exports = require('./impl');\n", false).unwrap();
        assert_eq!(got.reexports, ["./impl"]);
        assert!(analyze(&url("umd.js"), "(function (g, f) { typeof exports === 'object' ? f(exports) : f(g.x = {}) })(this, function (e) { e.v = 1 });", false).is_some());
    }

    #[test]
    fn the_view_keeps_lines_and_the_facade_exports_identifiers_only() {
        let deps = [
            Dep {
                name: "./d.json".into(),
                url: Some(url("d.json")),
            },
            Dep {
                name: "./node-only.js".into(),
                url: None,
            },
        ];
        let js = view(
            "/a.js",
            "#!/usr/bin/env node\nexports.a = require('./d.json');",
            &deps,
        );
        let mut lines = js.lines();
        assert!(lines.next().unwrap().ends_with("{///usr/bin/env node"));
        assert_eq!(lines.next().unwrap(), "exports.a = require('./d.json');");
        assert!(
            js.contains("import { __edge_cjs as __edge_d0 } from \"file:///app/d.json?edge-cjs\";")
        );
        assert!(js.contains("case \"./d.json\": return __edge_d0();"));
        assert!(js.contains("case \"./node-only.js\": return (__edge_ignored ??= {});"));
        assert!(js.contains(r#"__edge_m, "/a.js", "/");"#), "{js}");
        let js = facade(
            &view_url(&url("a.js")),
            &[
                "a".into(),
                "default".into(),
                "not-ident".into(),
                "class".into(),
            ],
            false,
        );
        assert!(js.starts_with("import { __edge_cjs } from \"file:///app/a.js?edge-cjs\";"));
        assert!(js.contains("as a };") && js.contains("as class };"));
        assert!(!js.contains("as not-ident") && !js.contains("as default"));
        assert!(js.contains("__esModule"));
        let node = facade(&view_url(&url("a.js")), &[], true);
        assert!(node.contains("export default __edge_e;") && !node.contains("__esModule"));
    }
}
