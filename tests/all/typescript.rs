//! Worker projects as they are written: TypeScript and JSX transpiled at load (types stripped,
//! stack traces on the `.ts` lines), bundler-style imports, and bundles the engine once
//! choked on.

use crate::harness::{Edge, client, edge_command, fixture, get_json, get_text, scratch};

#[tokio::test]
async fn a_typescript_app_runs_and_its_stack_traces_point_at_ts_lines() {
    let edge = Edge::dev("typescript");
    let c = client();
    assert_eq!(
        get_text(&c, &edge.url("/"), None).await,
        "hello from TypeScript"
    );
    let area = get_json(&c, &edge.url("/area"), None).await;
    assert_eq!(area, serde_json::json!({ "square": 9, "circle": 12.57 }));
    assert_eq!(
        get_text(&c, &edge.url("/page"), None).await,
        "<main class=\"page\"><h1>Hi edge</h1></main>"
    );
    // `throw new Error(why)` is on line 26 of src/index.ts, column 3.
    let stack = get_text(&c, &edge.url("/throw"), None).await;
    assert!(stack.contains("Error: on purpose"), "{stack}");
    assert!(stack.contains("src/index.ts:26:"), "{stack}");
}

#[test]
fn a_typescript_syntax_error_is_a_load_error_naming_file_line_and_column() {
    let app = scratch("ts-broken");
    std::fs::write(
        app.join("edge.toml"),
        "name = \"ts-broken\"\nmain = \"index.ts\"\n",
    )
    .unwrap();
    std::fs::write(
        app.join("index.ts"),
        "export default {\n  fetch(): Response {\n    const x: = 1;\n  },\n};\n",
    )
    .unwrap();
    let out = edge_command(&["check", app.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("index.ts:3:"), "{stderr}");
}

/// The regex-before-import bundle: it loads and answers on both engines (`edge check` exits,
/// `edge dev` serves), where the QuickJS build's isolate used to panic.
#[tokio::test]
async fn a_regex_with_quotes_before_an_import_loads() {
    let out = edge_command(&["check", fixture("regex-import").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let edge = Edge::dev("regex-import");
    assert_eq!(
        get_text(&client(), &edge.url("/"), None).await,
        "dep true say hi "
    );
}

/// A hostile module nested 100,000 levels deep (brackets, a prefix-operator chain, an
/// assignment chain) used to overflow the stack in swc and abort the whole node; it is a load
/// error now.
#[test]
fn a_module_nested_too_deep_is_a_load_error_not_a_crash() {
    let depth = 100_000;
    for expr in [
        format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}1", "!".repeat(depth)),
        format!("{}1", "a=".repeat(depth)),
    ] {
        let app = scratch("ts-deep");
        std::fs::write(
            app.join("edge.toml"),
            "name = \"deep\"\nmain = \"index.ts\"\n",
        )
        .unwrap();
        std::fs::write(
            app.join("index.ts"),
            format!("let a: any; const x: any = {expr};\nexport default {{ fetch() {{ return new Response(String(x)) }} }};\n"),
        )
        .unwrap();
        let out = edge_command(&["check", app.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("index.ts: nests deeper than 1000 levels"),
            "{stderr}"
        );
    }
}
