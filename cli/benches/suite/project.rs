//! `project`: a Worker project as people write them, loaded by a running node. The project is
//! generated: 20 TypeScript modules of 100 lines each (2,000 lines: interfaces, enums, generic
//! classes, `import type`, relative imports without extensions) and a dozen npm packages in
//! `node_modules` (half ES modules behind an `exports` map, half CommonJS with
//! `module.exports`). `--quick`/full put 5/20 copies of it in one `edge serve` (each copy at
//! its own path, so none reuses another's transpiled code) and time each copy's first request
//! (connect to end of response: the node reads, transpiles, wraps and compiles every module,
//! then runs the handler), then a second request (warm). edge's own log line for each load
//! gives the time spent reading and preparing the modules (transpiling TypeScript, wrapping
//! CommonJS) apart from compiling and running them. edge only: the peers run a project after
//! a build step (wrangler's esbuild, deno's own cache), which is not this.

use std::fmt::Write as _;
use std::path::Path;

use crate::report::{Report, Sample};
use crate::settings::Settings;
use crate::{apps, http, process, stats};

/// TypeScript modules in the project, and lines in each.
const MODULES: usize = 20;
const LINES: usize = 100;
/// npm packages in its `node_modules`.
const PACKAGES: usize = 12;

/// Runs the scenario in `dir`.
pub fn run(settings: &Settings, dir: &Path, report: &mut Report) {
    let copies = if settings.quick { 5 } else { 20 };
    for edge in &settings.edges {
        let apps_dir = dir.join(format!("{}-apps", edge.name));
        for copy in 0..copies {
            write_project(&apps_dir.join(format!("project-{copy}")));
        }
        let lines = count_ts_lines(&apps_dir.join("project-0/src"));
        let data = dir.join(format!("{}-data", edge.name));
        let server = process::edge_logging(
            *edge,
            &apps_dir,
            &data,
            &apps::edge_cache(dir),
            "warn,edge_runtime::isolate::thread=info",
        );
        let mut first = Vec::new();
        let mut warm = Vec::new();
        for copy in 0..copies {
            let host = format!("project-{copy}.localhost");
            first.push(http::timed_get(server.port, &host).as_secs_f64() * 1000.0);
            warm.push(http::timed_get(server.port, &host).as_secs_f64() * 1000.0);
        }
        let (prepare, load): (Vec<f64>, Vec<f64>) = server
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["message"] == "app modules loaded")
            .filter_map(|v| Some((v["prepare_ms"].as_f64()?, v["load_ms"].as_f64()?)))
            .unzip();
        assert_eq!(
            prepare.len(),
            copies,
            "{}: one load line per copy expected:\n{}",
            edge.name,
            server.log()
        );
        println!(
            "  {:<13} {lines} TypeScript lines + {PACKAGES} packages: first request p50 {:.1} ms (p99 {:.1}), of which preparing modules p50 {:.1} ms, loading all p50 {:.1} ms; warm request p50 {:.2} ms ({copies} copies)",
            edge.name,
            stats::median(&first),
            stats::percentile(&first, 99.0),
            stats::median(&prepare),
            stats::median(&load),
            stats::median(&warm),
        );
        let mut add = |variant: &str, metric: &'static str, runs: Vec<f64>| {
            report.add(Sample {
                scenario: "project",
                variant: variant.to_string(),
                system: edge.name,
                metric,
                unit: "ms",
                runs,
            })
        };
        add("first_request", "p50_ms", first.clone());
        add(
            "first_request",
            "p99_ms",
            vec![stats::percentile(&first, 99.0)],
        );
        add("prepare_modules", "p50_ms", prepare);
        add("load_modules", "p50_ms", load);
        add("warm_request", "p50_ms", warm);
    }
    report.note(
        "project",
        format!(
            "a generated TypeScript project ({MODULES} modules × {LINES} lines, {PACKAGES} npm \
             packages, half CommonJS) on a running `edge serve`: first_request = its first \
             request (connect to end of response; every module read, transpiled, compiled and \
             run), prepare_modules = the part spent reading and transpiling/wrapping, \
             load_modules = loading the whole module graph; warm_request = the next request"
        ),
    );
}

fn count_ts_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|text| text.lines().count())
                .sum()
        })
        .unwrap_or(0)
}

/// Writes the generated project into `dir`.
fn write_project(dir: &Path) {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create a folder");
        std::fs::write(&path, text).expect("write a project file");
    };
    write(
        "wrangler.toml",
        "name = \"NAME\"\nmain = \"src/index.ts\"\ncompatibility_date = \"2025-06-01\"\n\n[vars]\nMODE = \"bench\"\n"
            .replace("NAME", &dir.file_name().unwrap().to_string_lossy())
            .as_str(),
    );
    for p in 0..PACKAGES {
        let name = format!("pkg-{p}");
        if p.is_multiple_of(2) {
            write(
                &format!("node_modules/{name}/package.json"),
                &format!(
                    "{{ \"name\": \"{name}\", \"version\": \"1.{p}.0\", \"type\": \"module\", \"exports\": {{ \".\": {{ \"import\": \"./dist/index.js\" }}, \"./util\": \"./dist/util.js\" }} }}\n"
                ),
            );
            write(
                &format!("node_modules/{name}/dist/index.js"),
                &esm_package(p),
            );
            write(
                &format!("node_modules/{name}/dist/util.js"),
                &format!("export const tag{p} = (s) => `<{name}>${{s}}</{name}>`;\n"),
            );
        } else {
            write(
                &format!("node_modules/{name}/package.json"),
                &format!(
                    "{{ \"name\": \"{name}\", \"version\": \"1.{p}.0\", \"main\": \"lib/index.js\" }}\n"
                ),
            );
            write(
                &format!("node_modules/{name}/lib/index.js"),
                &cjs_package(p),
            );
            write(
                &format!("node_modules/{name}/lib/helpers.js"),
                &format!(
                    "'use strict';\nexports.scale = function (n) {{ return n * {}; }};\n",
                    p + 1
                ),
            );
        }
    }
    for m in 0..MODULES {
        write(&format!("src/mod{m}.ts"), &ts_module(m));
    }
    let mut index = String::new();
    for m in 0..MODULES {
        let _ = writeln!(index, "import {{ run{m} }} from \"./mod{m}\";");
    }
    index.push_str("\ninterface Env { MODE: string }\n\nexport default {\n  async fetch(request: Request, env: Env): Promise<Response> {\n    const results: number[] = [];\n");
    for m in 0..MODULES {
        let _ = writeln!(index, "    results.push(run{m}({m}));");
    }
    index.push_str("    return Response.json({ mode: env.MODE, sum: results.reduce((a, b) => a + b, 0) });\n  },\n};\n");
    write("src/index.ts", &index);
}

/// An ES module package: a class, a few functions.
fn esm_package(p: usize) -> String {
    let mut s = format!(
        "// pkg-{p}: an ES module package.\nimport {{ tag{p} }} from \"./util.js\";\n\nexport class Store{p} {{\n  #items = new Map();\n  set(key, value) {{ this.#items.set(key, value); return this; }}\n  get(key) {{ return this.#items.get(key); }}\n  get size() {{ return this.#items.size; }}\n}}\n\n"
    );
    for f in 0..20 {
        let _ = writeln!(
            s,
            "export function f{p}_{f}(n) {{\n  const values = Array.from({{ length: 4 }}, (_, i) => (n + i) * {f});\n  return values.reduce((a, b) => a + b, 0) + tag{p}(String(n)).length;\n}}\n"
        );
    }
    s
}

/// A CommonJS package: `module.exports` of an object, a local `require`.
fn cjs_package(p: usize) -> String {
    let mut s = format!(
        "'use strict';\n// pkg-{p}: a CommonJS package.\nvar helpers = require('./helpers');\n\nfunction Counter{p}(start) {{\n  this.value = start || 0;\n}}\nCounter{p}.prototype.add = function (n) {{\n  this.value += helpers.scale(n);\n  return this;\n}};\n\n"
    );
    let mut names = Vec::new();
    for f in 0..20 {
        let _ = writeln!(
            s,
            "function g{p}_{f}(n) {{\n  var total = 0;\n  for (var i = 0; i < 4; i++) total += (n + i) * {f};\n  return total;\n}}\n"
        );
        names.push(format!("g{p}_{f}: g{p}_{f}"));
    }
    let _ = writeln!(
        s,
        "module.exports = {{ Counter{p}: Counter{p}, {} }};",
        names.join(", ")
    );
    s
}

/// TypeScript module `m`, [`LINES`] lines, using a package and the module before it.
fn ts_module(m: usize) -> String {
    let p = m % PACKAGES;
    let mut s = String::new();
    if p.is_multiple_of(2) {
        let _ = writeln!(s, "import {{ Store{p}, f{p}_1 }} from \"pkg-{p}\";");
    } else {
        let _ = writeln!(s, "import pkg from \"pkg-{p}\";");
        let _ = writeln!(s, "const {{ Counter{p}, g{p}_1 }} = pkg;");
    }
    if m > 0 {
        let _ = writeln!(
            s,
            "import type {{ Shape{} }} from \"./mod{}\";",
            m - 1,
            m - 1
        );
        let _ = writeln!(s, "import {{ area{} }} from \"./mod{}\";", m - 1, m - 1);
    }
    let _ = writeln!(
        s,
        "\nexport enum Kind{m} {{ Circle = \"circle\", Square = \"square\", Triangle = \"triangle\" }}\n\nexport interface Shape{m} {{\n  kind: Kind{m};\n  size: number;\n  label?: string;\n}}\n\nexport class Registry{m}<T extends Shape{m}> {{\n  private readonly items: T[] = [];\n  constructor(public readonly name: string) {{}}\n  add(item: T): this {{\n    this.items.push(item);\n    return this;\n  }}\n  total(measure: (item: T) => number): number {{\n    return this.items.reduce((sum: number, item: T) => sum + measure(item), 0);\n  }}\n}}\n\nexport function area{m}(shape: Shape{m}): number {{\n  switch (shape.kind) {{\n    case Kind{m}.Circle:\n      return Math.PI * shape.size * shape.size;\n    case Kind{m}.Square:\n      return shape.size * shape.size;\n    default:\n      return (Math.sqrt(3) / 4) * shape.size * shape.size;\n  }}\n}}\n"
    );
    let mut f = 0;
    while s.lines().count() + 14 < LINES {
        let _ = writeln!(
            s,
            "function helper{m}_{f}(values: readonly number[], factor: number = {f}): number {{\n  let acc: number = 0;\n  for (const v of values) {{\n    acc += (v as number) * factor;\n  }}\n  return acc;\n}}\n"
        );
        f += 1;
    }
    let package_call = if p.is_multiple_of(2) {
        format!("new Store{p}().set(\"a\", 1).size + f{p}_1(n)")
    } else {
        format!("new Counter{p}(1).add(n).value + g{p}_1(n)")
    };
    let previous = if m > 0 {
        format!(
            "area{}({{ kind: \"square\", size: n }} as unknown as Shape{})",
            m - 1,
            m - 1
        )
    } else {
        "0".to_string()
    };
    let _ = writeln!(
        s,
        "export function run{m}(n: number): number {{\n  const registry = new Registry{m}<Shape{m}>(\"r{m}\");\n  registry.add({{ kind: Kind{m}.Square, size: n }}).add({{ kind: Kind{m}.Circle, size: 1 }});\n  const helpers: number = helper{m}_0([n, n + 1]);\n  return Math.round(registry.total(area{m}) + helpers + {package_call} + {previous});\n}}"
    );
    while s.lines().count() < LINES {
        s.push_str("// end\n");
    }
    s
}
