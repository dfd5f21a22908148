//! Embeds the JavaScript of every deno_core extension edge uses into the binary.
//!
//! deno_core's extension macros record each script as a path on the build machine and read it
//! from there while building a startup snapshot. `edge` builds its snapshot at its first start,
//! so a binary copied to another machine (an edge node without the crate sources) could not
//! start. This script finds every package that depends on `deno_core` (through `cargo
//! metadata`, so registry, git, vendored and workspace packages alike) and writes a table of
//! `(path, include_str!(path))` for their `.js` files; the runtime swaps each recorded path for
//! the embedded text before any isolate is made (`isolate::embedded`).
//!
//! It also sets `EDGE_JS_FINGERPRINT`, a hash of the embedded scripts, which is part of the
//! snapshot cache key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directories never searched for extension scripts.
const SKIP_DIRS: &[&str] = &[
    "target",
    "tests",
    "test",
    "testdata",
    "benches",
    "examples",
    "benchmarks",
    "node_modules",
];

fn main() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let metadata = match cargo_metadata(&manifest_dir) {
        Ok(metadata) => metadata,
        Err(e) => {
            // Still a working binary on this machine (scripts are read from their paths while
            // the snapshot is built), just not one that can be copied elsewhere.
            println!("cargo:warning=extension scripts not embedded: {e}");
            serde_json::Value::Null
        }
    };
    let workspace_root = metadata["workspace_root"].as_str().map(PathBuf::from);
    if let Some(root) = &workspace_root {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("Cargo.lock").display()
        );
    }

    let mut files = BTreeSet::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let uses_deno_core = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["name"] == "deno_core" && d["kind"].is_null());
        if !uses_deno_core {
            continue;
        }
        let Some(manifest) = package["manifest_path"].as_str() else {
            continue;
        };
        let Some(root) = Path::new(manifest).parent() else {
            continue;
        };
        let local = package["source"].is_null();
        collect_js(root, local, true, &mut files);
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let mut table = String::from(
        "/// Every extension script, by its normalized path on the build machine.\n\
         pub(crate) static EMBEDDED_JS: &[(&str, &str)] = &[\n",
    );
    // FNV-1a over paths and contents: stable across builds, no dependencies.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in &files {
        let key = path.to_string_lossy();
        let body = std::fs::read(path).unwrap_or_default();
        for byte in key.as_bytes().iter().chain(&body) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        table.push_str(&format!("    ({key:?}, include_str!({key:?})),\n"));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("embedded_js.rs"), table).expect("cannot write embedded_js.rs");
    println!("cargo:rustc-env=EDGE_JS_FINGERPRINT={hash:016x}");
}

/// `cargo metadata` for the package being built, on the target platform (with the workspace's
/// default features: a superset of what is compiled is harmless, a script no extension names
/// is never read).
fn cargo_metadata(manifest_dir: &Path) -> Result<serde_json::Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = std::env::var("TARGET").map_err(|e| format!("TARGET: {e}"))?;
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &target,
        ])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))
    };
    // Everything being built is already downloaded; only a package the build does not need
    // (a dev-dependency) may be missing, and then the registry is asked.
    let mut output = run(true)?;
    if !output.status.success() {
        output = run(false)?;
    }
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// Adds the `.js`, `.mjs` and `.ts` files (not `.d.ts`) under `dir` (skipping [`SKIP_DIRS`] and hidden directories). A local
/// package's directories holding scripts are watched, so an added or edited script rebuilds.
fn collect_js(dir: &Path, local: bool, top: bool, files: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut has_js = false;
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            // A `test` folder below a package's top is not its tests (deno_node's
            // `polyfills/test` is `node:test`).
            let skipped = SKIP_DIRS.contains(&name.as_ref()) && (name != "test" || top);
            if !name.starts_with('.') && !skipped {
                collect_js(&path, local, false, files);
            }
        } else if [".js", ".mjs", ".ts"].iter().any(|ext| name.ends_with(ext))
            && !name.ends_with(".d.ts")
        {
            has_js = true;
            files.insert(normalize(&path));
        }
    }
    if local && has_js {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
}

/// The path without `.` components or doubled separators, as the runtime looks it up.
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}
