//! Why an app failed to load is typed: compiling, evaluating, finding a handler, or a limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_runtime::isolate::LoadError;
use edge_runtime::{Node, NodeOptions};

fn app(name: &str, code: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("load-errors-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"index.js\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), code).unwrap();
    dir
}

async fn load(dir: &Path) -> Result<(), LoadError> {
    let options = NodeOptions {
        idle_timeout: Duration::from_secs(5),
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-cache")),
        ..NodeOptions::default()
    };
    let node = Node::single(dir, options).unwrap();
    node.tenants()[0].load().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_kind() {
    let ok = app(
        "fine",
        "export default { fetch() { return new Response('ok'); } };",
    );
    assert!(load(&ok).await.is_ok());

    let e = load(&app("syntax", "export default { fetch( {\n"))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Compile(_)), "{e:?}");
    assert!(e.to_string().contains("index.js"), "{e}");

    let e = load(&app("missing", "import './nope.js';\nexport default {};\n"))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Compile(_)), "{e:?}");

    let e = load(&app("throws", "throw new Error('at the top');\n"))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Evaluate(_)), "{e:?}");
    assert!(e.to_string().contains("at the top"), "{e}");

    let e = load(&app("nothing", "export default { hello() {} };\n"))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::NoHandler(_)), "{e:?}");
    assert!(e.to_string().contains("no fetch() method"), "{e}");

    let e = load(&app("spins", "for (;;) {}\n")).await.unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Limit {
                kind: edge_runtime::limits::LimitKind::Cpu,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("while loading the app"), "{e}");
}
