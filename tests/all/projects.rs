//! Worker projects brought as they are: a `wrangler.toml` or `wrangler.jsonc` instead of an
//! `edge.toml`, with settings edge does not implement named in warnings, not refused.

use crate::harness::{Edge, client, copy_dir, edge_command, fixture, get_json, scratch};

/// A fixture copied to a scratch folder (`edge dev` keeps local state in the app's `.edge/`).
fn project(name: &str) -> std::path::PathBuf {
    let dir = scratch(name).join(name);
    copy_dir(&fixture(name), &dir);
    dir
}

fn check(dir: &std::path::Path) -> (bool, String) {
    let out = edge_command(&["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_wrangler_toml_project_runs_with_warnings_for_what_edge_lacks() {
    let dir = project("wrangler-toml");
    let (ok, stderr) = check(&dir);
    assert!(ok, "{stderr}");
    for key in ["r2_buckets", "account_id", "workers_dev", "observability"] {
        assert!(
            stderr.contains(&format!("wrangler.toml: `{key}` ignored")),
            "{key}: {stderr}"
        );
    }
    assert_eq!(stderr.matches("warning:").count(), 4, "{stderr}");

    let edge = Edge::dev_dir(&dir, &[]);
    let c = client();
    for count in 1..=2 {
        let got = get_json(&c, &edge.url("/"), None).await;
        assert_eq!(
            got,
            serde_json::json!({ "greeting": "hi from wrangler.toml", "count": count, "bucket": "undefined" })
        );
    }
    assert!(
        edge.logs().contains("`r2_buckets` ignored"),
        "{}",
        edge.logs()
    );
}

#[tokio::test]
async fn a_wrangler_jsonc_project_runs() {
    let dir = project("wrangler-jsonc");
    let (ok, stderr) = check(&dir);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("wrangler.jsonc: `d1_databases` ignored"),
        "{stderr}"
    );
    // `$schema` is an editor hint: no warning for it.
    assert!(!stderr.contains("$schema"), "{stderr}");
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        serde_json::json!({ "greeting": "hi from wrangler.jsonc", "retries": 3, "kv": "v", "db": "undefined", "secret": null })
    );
}

#[tokio::test]
async fn edge_dev_reads_local_secrets_from_dev_vars_and_never_prints_them() {
    let dir = project("wrangler-jsonc");
    std::fs::write(
        dir.join(".dev.vars"),
        "# local secrets\nAPI_KEY=\"s3cret-value\"\nGREETING=\"from .dev.vars\"\n",
    )
    .unwrap();
    let edge = Edge::dev_dir(&dir, &[]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(got["greeting"], "from .dev.vars");
    assert_eq!(got["secret"], "s3cret-value".len());
    let logs = edge.logs();
    assert!(!logs.contains("s3cret"), "{logs}");
    // An edited .dev.vars is served without a restart, as with wrangler.
    std::fs::write(
        dir.join(".dev.vars"),
        "API_KEY=\"s3cret-value\"\nGREETING=\"edited\"\n",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get_json(&client(), &edge.url("/"), None).await["greeting"] != "edited" {
        assert!(
            std::time::Instant::now() < deadline,
            "not reloaded\n{}",
            edge.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One that does not parse is shown once, by line, and the version before keeps serving.
    std::fs::write(
        dir.join(".dev.vars"),
        "GREETING=\"broken\"\nTOKEN s3cret-value\n",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let shown = loop {
        let res = client().get(edge.url("/")).send().await.unwrap();
        let text = res.text().await.unwrap();
        if text.contains("not KEY=VALUE") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not shown: {text}\n{}",
            edge.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(shown.contains(".dev.vars: line 2"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(
        get_json(&client(), &edge.url("/"), None).await["greeting"],
        "edited"
    );
    std::fs::write(
        dir.join(".dev.vars"),
        "# local secrets\nAPI_KEY=\"s3cret-value\"\nGREETING=\"from .dev.vars\"\n",
    )
    .unwrap();
    // `--var` wins over .dev.vars, as over [vars].
    drop(edge);
    let edge = Edge::dev_dir(&dir, &["--var", "GREETING=from --var"]);
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(got["greeting"], "from --var");
    drop(edge);
    // A line that does not parse is named by number; the line itself may hold a secret.
    std::fs::write(dir.join(".dev.vars"), "A=1\nTOKEN s3cret-value\n").unwrap();
    let out = edge_command(&["dev", dir.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(".dev.vars: line 2 is not KEY=VALUE"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn edge_toml_wins_and_unknown_keys_are_still_errors() {
    let dir = project("wrangler-toml");
    // An edge.toml next to wrangler.toml is the one read.
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"own\"\nmain = \"src/index.ts\"\n",
    )
    .unwrap();
    let out = edge_command(&["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok: own "), "{stdout}");
    std::fs::remove_file(dir.join("edge.toml")).unwrap();

    // A key that is neither edge's nor wrangler's is an error naming file, key and line.
    let toml = std::fs::read_to_string(dir.join("wrangler.toml")).unwrap();
    std::fs::write(
        dir.join("wrangler.toml"),
        format!("colour = \"blue\"\n{toml}"),
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("wrangler.toml") && stderr.contains("colour") && stderr.contains("line 1"),
        "{stderr}"
    );

    // In JSON, a bad value names the file and the reason, not a line of some TOML.
    let dir = project("wrangler-jsonc");
    std::fs::write(
        dir.join("wrangler.jsonc"),
        "{ \"name\": \"x\", \"main\": \"index.js\", \"compatibility_flags\": 3 }",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("wrangler.jsonc") && !stderr.contains("TOML"),
        "{stderr}"
    );
}

#[tokio::test]
async fn imports_follow_workers_module_rules() {
    let edge = Edge::dev("module-rules");
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        serde_json::json!({
            "page": "<h1>\"Hello\" — page</h1>\n",
            "notes": "plain text\nsecond line",
            "query": "SELECT * FROM t WHERE a = ?;\n",
            "blob": [true, [0, 1, 2, 250, 255]],
            "wasm": [true, 105],
            "data": { "list": [1, 2, 3], "name": "data" },
            "same": "data",
            "dynamic": true,
        })
    );
}

#[test]
fn an_unsupported_import_is_a_load_error_naming_it() {
    let dir = scratch("rules-bad");
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"bad\"\nmain = \"index.js\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), "import css from \"./style.css\";\nexport default { fetch() { return new Response(css) } };\n").unwrap();
    std::fs::write(dir.join("style.css"), "b {}").unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("style.css") && stderr.contains("unsupported file type"),
        "{stderr}"
    );
    std::fs::write(
        dir.join("index.js"),
        "import d from \"./d.json\";\nexport default { fetch() { return Response.json(d) } };\n",
    )
    .unwrap();
    std::fs::write(dir.join("d.json"), "{\n  \"a\": ,\n}").unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(stderr.contains("d.json:2:"), "{stderr}");
}

#[tokio::test]
async fn packages_resolve_from_node_modules_as_wrangler_resolves_them() {
    let edge = Edge::dev("npm-app");
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        serde_json::json!({
            "greet": "hello edge!",
            "flavour": "workerd",
            "tag": "<b>bold</b>",
            "shout": "HEY!",
            "version": "esm 2.0.0",
            "deep": "a file at the package root",
            "helper": "from #lib/helper",
        })
    );
}

#[test]
fn a_missing_package_names_it_the_importer_and_npm_install() {
    let dir = scratch("npm-missing");
    std::fs::write(dir.join("edge.toml"), "name = \"m\"\nmain = \"index.js\"\n").unwrap();
    std::fs::write(
        dir.join("index.js"),
        "import { Hono } from \"hono\";\nexport default new Hono();\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("no package \"hono\" in node_modules")
            && stderr.contains("npm install")
            && stderr.contains("index.js:1:"),
        "{stderr}"
    );
    // A subpath the package does not export is refused, naming it.
    let pkg = dir.join("node_modules/hono");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("package.json"),
        "{\"name\":\"hono\",\"type\":\"module\",\"exports\":{\".\":\"./index.js\"}}",
    )
    .unwrap();
    std::fs::write(pkg.join("index.js"), "export class Hono {}\n").unwrap();
    std::fs::write(pkg.join("secret.js"), "export const s = 1;\n").unwrap();
    std::fs::write(
        dir.join("index.js"),
        "import { s } from \"hono/secret.js\";\nexport default { fetch() { return new Response(String(s)) } };\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("hono/secret.js") && stderr.contains("not exported"),
        "{stderr}"
    );
}

#[test]
fn edge_check_warns_about_handlers_nothing_triggers() {
    let dir = scratch("untriggered");
    std::fs::write(dir.join("edge.toml"), "name = \"u\"\nmain = \"index.js\"\n").unwrap();
    std::fs::write(
        dir.join("index.js"),
        "export default { fetch() { return new Response('ok') }, scheduled() {}, queue() {} };\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("scheduled() handler but no cron triggers it")
            && stderr.contains("[triggers] crons"),
        "{stderr}"
    );
    assert!(
        stderr.contains("queue() handler but consumes no queue")
            && stderr.contains("[[queues.consumers]]"),
        "{stderr}"
    );
    // With a trigger and a consumer, nothing to say.
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"u\"\nmain = \"index.js\"\n[triggers]\ncrons = [\"* * * * *\"]\n[[queues.consumers]]\nqueue = \"jobs\"\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[tokio::test]
async fn commonjs_packages_run_with_esbuilds_interop() {
    let edge = Edge::dev("commonjs");
    let got = get_json(&client(), &edge.url("/"), None).await;
    let optional = got["optional"].clone();
    assert_eq!(
        got,
        serde_json::json!({
            "callable": ["hello-world", "-", "function"],
            "babel": ["hello edge", "HI!", "3.1.0", "function", "3.1.0"],
            "reexport": [5, 8, true],
            "dual": ["esm", "uses cjs", [true, "esm default", "esm named"]],
            // Node's order: a starts, b requires a and sees it half done.
            "cycle": { "early": "a-early", "late": "a-late", "sawFromB": ["a-early", "a-late missing"] },
            "optional": optional,
            "local": ["/src/local.cjs in /src", "data from json"],
            "umd": "umd 1.2.3",
            "nodeMode": ["object", "function", "3.1.0"],
        })
    );
    assert_eq!(optional["fast"], serde_json::Value::Null);
    assert_eq!(optional["missing"][0], "MODULE_NOT_FOUND");
    let missing = optional["missing"][1].as_str().unwrap();
    assert!(
        missing.starts_with(
            "Cannot find module 'not-installed-native' from /node_modules/optional/index.js"
        ),
        "{missing}"
    );
    let builtin = optional["builtin"].as_str().unwrap();
    assert!(
        builtin.contains("'crypto'") && builtin.contains("nodejs_compat"),
        "{builtin}"
    );
    assert_eq!(optional["computed"], "MODULE_NOT_FOUND");
}

#[test]
fn an_environment_is_chosen_with_env_and_a_missing_one_is_named() {
    let dir = scratch("environments");
    std::fs::write(
        dir.join("wrangler.toml"),
        "name = \"envs\"\nmain = \"index.js\"\n[vars]\nWHO = \"top\"\n[env.staging.vars]\nWHO = \"staging\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        "export default { fetch(r, env) { return new Response(env.WHO) } };\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(ok && !stderr.contains("warning"), "{stderr}");
    let out = edge_command(&["check", dir.to_str().unwrap(), "--env", "staging"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: envs-staging"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = edge_command(&["check", dir.to_str().unwrap(), "--env", "qa"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "wrangler.toml: `env.qa`: no such environment (the environments defined: staging)"
        ),
        "{stderr}"
    );
}

/// Every kind of import edge does not take is a load error that names it.
#[test]
fn each_unsupported_import_is_a_load_error_naming_it() {
    let dir = scratch("unsupported-imports");
    std::fs::write(dir.join("edge.toml"), "name = \"u\"\nmain = \"index.js\"\n").unwrap();
    std::fs::write(dir.join("style.css"), "b {}").unwrap();
    let cases = [
        (
            "node:buffer",
            "Node.js built-in modules need compatibility_flags = [\"nodejs_compat\"] in the app's config",
        ),
        (
            "https://esm.sh/hono",
            "only files inside the app directory can be imported",
        ),
        ("../outside.js", "no such file in the app directory"),
        ("./style.css", "unsupported file type"),
        ("./missing.js", "no such file in the app directory"),
        (
            "not-installed",
            "no package \"not-installed\" in node_modules",
        ),
    ];
    for (specifier, reason) in cases {
        std::fs::write(
            dir.join("index.js"),
            format!("import x from {specifier:?};\nexport default {{ fetch() {{ return new Response(String(x)) }} }};\n"),
        )
        .unwrap();
        let (ok, stderr) = check(&dir);
        assert!(!ok, "{specifier}");
        assert!(
            stderr.contains(reason)
                && stderr.contains(specifier.trim_start_matches("./").trim_start_matches("../")),
            "{specifier}: {stderr}"
        );
    }
}

/// The QuickJS build does not run Deno's Node modules: an app with `nodejs_compat` gets an
/// error that says so, not a crash.
#[cfg(feature = "quickjs")]
#[test]
fn quickjs_refuses_node() {
    let dir = scratch("quickjs-node");
    std::fs::write(
        dir.join("edge.toml"),
        "name = \"q\"\nmain = \"index.js\"\ncompatibility_date = \"2025-06-01\"\ncompatibility_flags = [\"nodejs_compat\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        "import { Buffer } from \"node:buffer\";\nexport default { fetch() { return new Response(typeof Buffer) } };\n",
    )
    .unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("nodejs_compat needs edge's V8 build; this binary is the QuickJS build"),
        "{stderr}"
    );
}
