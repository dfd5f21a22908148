//! The Node.js built-in modules an app can import under `nodejs_compat`: those Cloudflare
//! Workers provides, each as `node:<name>` and, as on Workers, as the bare `<name>`.

/// What an import of a Node.js built-in name gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// The module, under this specifier (deno_node's registration of it).
    Module(&'static str),
    /// A Node.js built-in edge does not provide (it would reach the host: files, sockets,
    /// processes), or one Workers does not provide either.
    Unsupported,
}

/// The modules provided, by name, with the specifier each is registered under.
const PROVIDED: &[(&str, &str)] = &[
    ("assert", "node:assert"),
    ("assert/strict", "node:assert/strict"),
    ("async_hooks", "node:async_hooks"),
    ("buffer", "node:buffer"),
    ("crypto", "node:crypto"),
    ("diagnostics_channel", "node:diagnostics_channel"),
    ("events", "node:events"),
    ("path", "node:path"),
    ("path/posix", "node:path/posix"),
    ("path/win32", "node:path/win32"),
    ("process", "node:process"),
    ("punycode", "node:punycode"),
    ("querystring", "node:querystring"),
    ("stream", "node:stream"),
    ("stream/consumers", "node:stream/consumers"),
    ("stream/promises", "node:stream/promises"),
    ("stream/web", "node:stream/web"),
    ("string_decoder", "node:string_decoder"),
    ("timers", "node:timers"),
    ("timers/promises", "node:timers/promises"),
    ("url", "node:url"),
    ("util", "node:util"),
    ("util/types", "node:util/types"),
    ("zlib", "node:zlib"),
];

/// Node.js built-in names that are not provided: an import of one, bare or as `node:`, fails
/// with [`unsupported_message`], as wrangler's bundle for Workers does.
const KNOWN: &[&str] = &[
    "_http_agent",
    "_http_client",
    "_http_common",
    "_http_incoming",
    "_http_outgoing",
    "_http_server",
    "_stream_duplex",
    "_stream_passthrough",
    "_stream_readable",
    "_stream_transform",
    "_stream_writable",
    "_tls_common",
    "_tls_wrap",
    "child_process",
    "cluster",
    "console",
    "constants",
    "dgram",
    "dns",
    "dns/promises",
    "domain",
    "fs",
    "fs/promises",
    "http",
    "http2",
    "https",
    "inspector",
    "inspector/promises",
    "module",
    "net",
    "os",
    "perf_hooks",
    "readline",
    "readline/promises",
    "repl",
    "sqlite",
    "sys",
    "test",
    "tls",
    "trace_events",
    "tty",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
];

/// What `specifier` names, when it names a Node.js built-in: `node:<name>` always does; a bare
/// `<name>` does when it is a Node.js built-in's name. Anything else is `None` (a package, a
/// path).
pub fn lookup(specifier: &str) -> Option<Builtin> {
    let (name, prefixed) = match specifier.strip_prefix("node:") {
        Some(name) => (name, true),
        None => (specifier, false),
    };
    if let Some((_, registered)) = PROVIDED.iter().find(|(n, _)| *n == name) {
        return Some(Builtin::Module(registered));
    }
    (prefixed || KNOWN.contains(&name)).then_some(Builtin::Unsupported)
}

/// The modules provided: each name with the specifier it is registered under.
pub fn provided() -> impl Iterator<Item = (&'static str, &'static str)> {
    PROVIDED.iter().copied()
}

/// The error for an import of a built-in edge does not provide.
pub fn unsupported_message(specifier: &str) -> String {
    let name = specifier.strip_prefix("node:").unwrap_or(specifier);
    if KNOWN.contains(&name) {
        format!(
            "node:{name} is not supported on edge (it would reach the host); the Node.js modules \
             available under nodejs_compat are: {}",
            provided_list()
        )
    } else {
        format!(
            "no Node.js built-in module node:{name}; those available under nodejs_compat are: {}",
            provided_list()
        )
    }
}

fn provided_list() -> String {
    PROVIDED
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !n.contains('/'))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_on_workers() {
        assert_eq!(lookup("node:buffer"), Some(Builtin::Module("node:buffer")));
        assert_eq!(lookup("buffer"), Some(Builtin::Module("node:buffer")));
        assert_eq!(lookup("node:fs"), Some(Builtin::Unsupported));
        assert_eq!(lookup("fs"), Some(Builtin::Unsupported));
        assert_eq!(lookup("node:nope"), Some(Builtin::Unsupported));
        assert_eq!(lookup("nope"), None);
        assert_eq!(lookup("./buffer"), None);
        assert!(unsupported_message("fs").starts_with("node:fs is not supported on edge"));
    }
}
