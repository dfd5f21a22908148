//! A tenant learns nothing about the host's files, and the node's own files are its user's.

use crate::harness::{Edge, edge_command, scratch};

/// `edge check` on an app whose module imports `target`: its stderr.
fn check_importing(target: &str) -> String {
    let app = scratch("import-app");
    std::fs::write(
        app.join("edge.toml"),
        "name = \"imports\"\nmain = \"index.js\"\n",
    )
    .unwrap();
    std::fs::write(
        app.join("index.js"),
        format!("import x from {target:?};\nexport default {{ fetch() {{ return new Response(x); }} }};\n"),
    )
    .unwrap();
    let out = edge_command(&["check", app.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_import_cannot_tell_which_host_files_exist() {
    // Before: "No such file or directory" for one, "outside the app directory" for the other.
    let existing = check_importing("/etc/hostname");
    let missing = check_importing("/etc/no-such-file-for-edge");
    for err in [&existing, &missing] {
        assert!(err.contains("no such file in the app directory"), "{err}");
        assert!(!err.contains("os error"), "{err}");
    }
}

#[test]
fn the_kv_file_is_readable_by_the_node_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let data = scratch("data");
    let _edge = Edge::serve_in(&crate::harness::fixture("hardening"), &data, &[], &[]);
    let mode = std::fs::metadata(data.join("kv.redb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kv.redb is {:o}", mode & 0o777);
}
