//! Fingerprints edge's own extension JavaScript so the startup-snapshot cache key changes when
//! it does. deno_core reads extension scripts from their source paths while building a
//! snapshot, so an edited script does not change the binary, and a cache keyed by the binary
//! alone would keep serving the old snapshot.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        root.join("js"),
        root.join("../bindings/web/js"),
        root.join("../bindings/kv/js"),
    ];
    let mut files = Vec::new();
    for dir in &dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    // FNV-1a over names and contents: stable across builds, no dependencies.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = std::fs::read(file).unwrap_or_default();
        for byte in name.as_bytes().iter().chain(&body) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=EDGE_JS_FINGERPRINT={hash:016x}");
}
