//! Node.js APIs for edge isolates, for apps whose config says
//! `compatibility_flags = ["nodejs_compat"]`.
//!
//! Nothing here is a hand-written polyfill. The modules are Deno's Node implementation
//! (`deno_node`, with `deno_node_crypto` and the extensions it declares as dependencies:
//! `deno_io`, `deno_fs`, `deno_os`), assembled so that a tenant's code can never reach the host
//! through them:
//!
//! - every op that touches the file system, the network, processes, the environment or the
//!   engine's flags is disabled before the isolate is made ([`ops`]): only computing ops
//!   (buffers, encodings, crypto, compression, IDNA) keep their implementation;
//! - only the modules Cloudflare Workers provides under `nodejs_compat` resolve ([`builtins`]):
//!   `node:fs`, `node:net`, `node:child_process` and the rest answer "not supported on edge";
//! - Deno's modules read a global `Deno` namespace in places; they are given a private one of
//!   edge's instead ([`sources`]), so the app's global scope still has no `Deno`, as on Workers.
//!
//! [`extensions`] returns the extensions in load order (they go after the web extensions);
//! [`prepare`] makes their sources ready to run (TypeScript stripped) once per process.

mod absent;
mod builtins;
mod checked;
mod ops;
mod sources;

pub use builtins::{Builtin, lookup, provided, unsupported_message};
pub use sources::prepare;

/// No npm packages are resolved by Deno's machinery: edge's loader resolves the app's files.
/// The types only fill `deno_node`'s parameters; with no `NodeExtInitServices` given, nothing
/// of these is ever made.
type NpmChecker = deno_resolver::npm::DenoInNpmPackageChecker;
type NpmFolders = deno_resolver::npm::NpmResolver<sys_traits::impls::RealSys>;
type Sys = sys_traits::impls::RealSys;

deno_core::extension!(
    edge_nodejs,
    deps = [deno_node],
    esm_entry_point = "ext:edge_nodejs/00_setup.js",
    esm = [dir "js", "00_setup.js"],
    state = |state| {
        // Deno's Node modules take resource id 0 for "none" (in Deno, 0 to 2 are stdio): the
        // first cipher of an isolate would get it and be refused as unknown. Hold 0 to 2.
        while state.resource_table.names().count() < 3 {
            state.resource_table.add(Reserved);
        }
    },
);

/// Holds a resource id no op may hand out (see the extension's state).
struct Reserved;

impl deno_core::Resource for Reserved {
    fn name(&self) -> std::borrow::Cow<'_, str> {
        "reserved".into()
    }
}

/// The Node.js extensions, in load order, their host-reaching ops disabled. Every isolate
/// carries them (the startup snapshot is one for all apps); an app without `nodejs_compat`
/// cannot import any of their modules.
pub fn extensions() -> Vec<deno_core::Extension> {
    // Never used: every op that would reach it is disabled (see `ops`).
    let fs: deno_fs::FileSystemRc = deno_fs::sync::MaybeArc::new(deno_fs::RealFs);
    let mut exts = vec![
        deno_io::deno_io::init(None),
        deno_fs::deno_fs::init(fs.clone()),
        deno_os::deno_os::init(None),
        deno_node_crypto::deno_node_crypto::init(),
        deno_node::deno_node::init::<NpmChecker, NpmFolders, Sys>(None, fs),
        edge_nodejs::init(),
    ];
    // Ops the modules import from Deno's runtime, which is not here: stand-ins that throw.
    if let Some(ours) = exts.iter_mut().find(|e| e.name == "edge_nodejs") {
        ours.ops.to_mut().extend(absent::ops());
    }
    for ext in &mut exts {
        ops::confine(ext);
    }
    exts
}
