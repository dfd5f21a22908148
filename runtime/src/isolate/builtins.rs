//! Node.js built-ins as an app's imports name them, and imports refused for good.

use deno_core::ModuleSpecifier;

use crate::config::NodeModules;

/// The module a Node.js built-in name gives an app whose flags allow `node`, or why it gives
/// none; `None` when `specifier` is not taken as a built-in (a package, a path).
pub(super) fn node_builtin(
    node: NodeModules,
    specifier: &str,
) -> Option<Result<ModuleSpecifier, String>> {
    use edge_nodejs::Builtin;
    let found = edge_nodejs::lookup(specifier)?;
    let prefixed = specifier.starts_with("node:");
    let allowed = match node {
        NodeModules::Off | NodeModules::NotGranted | NodeModules::NeedsV8 => false,
        NodeModules::AsyncHooks => found == Builtin::Module("node:async_hooks"),
        NodeModules::Prefixed => prefixed,
        NodeModules::All => true,
    };
    match found {
        // A bare name the flags do not give to Node: a package of that name, as before.
        _ if !allowed && !prefixed => None,
        _ if !allowed => Some(Err(match node {
            NodeModules::AsyncHooks => "only node:async_hooks is available with the nodejs_als flag; add \"nodejs_compat\" to compatibility_flags for the rest".to_string(),
            NodeModules::NeedsV8 => "nodejs_compat needs edge's V8 build; this binary is the QuickJS build".to_string(),
            NodeModules::NotGranted => "this node does not grant the app nodejs_compat (the operator runs edge serve --allow-nodejs-compat NAME)".to_string(),
            _ => "Node.js built-in modules need compatibility_flags = [\"nodejs_compat\"] in the app's config".to_string(),
        })),
        Builtin::Module(name) => Some(
            ModuleSpecifier::parse(name).map_err(|e| format!("{name}: {e}")),
        ),
        Builtin::Unsupported => Some(Err(edge_nodejs::unsupported_message(specifier))),
    }
}

/// The scheme of a refused import's URL, whose path is the error (see `resolve`).
const REFUSED: &str = "edge-refused";

/// A URL that fails to load with `message` (in hex: any text makes a valid URL).
pub(super) fn refusal(message: &str) -> ModuleSpecifier {
    use std::fmt::Write;
    let mut url = format!("{REFUSED}:");
    for byte in message.bytes() {
        let _ = write!(url, "{byte:02x}");
    }
    ModuleSpecifier::parse(&url).unwrap_or_else(|_| {
        ModuleSpecifier::parse(&format!("{REFUSED}:")).expect("a scheme and an empty path")
    })
}

/// The error a refused import's URL carries (see [`refusal`]); `None` for any other URL.
pub(super) fn refused(url: &ModuleSpecifier) -> Option<String> {
    if url.scheme() != REFUSED {
        return None;
    }
    let bytes: Vec<u8> = url
        .path()
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_message() {
        let url = refusal("cannot import \"node:fs\": a = b & c");
        assert_eq!(
            refused(&url).as_deref(),
            Some("cannot import \"node:fs\": a = b & c")
        );
        assert_eq!(
            refused(&ModuleSpecifier::parse("file:///a.js").unwrap()),
            None
        );
    }
}
