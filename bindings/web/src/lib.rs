//! Web platform APIs for edge isolates.
//!
//! A Worker expects the browser-like global scope Cloudflare Workers gives it: `fetch`, `Request`,
//! `Response`, `Headers`, `URL`, `TextEncoder`, streams, timers, `crypto`, `console` and so on.
//! This crate does not hand-write any of them. It assembles Deno's extension crates
//! (`deno_webidl`, `deno_web`, `deno_crypto`, `deno_fetch`) and adds one small extension of its
//! own, `edge_web`, whose bootstrap module installs the globals and routes `console` to
//! `tracing`.
//!
//! `HTMLRewriter` is Cloudflare's lol_html, driven from the isolate's thread (`html_rewriter`).
//!
//! Outbound `fetch` passes through [`NetPolicy`]: public hosts are reachable, loopback, private
//! and link-local ranges are not unless the app's config allows them.
//!
//! [`extensions`] returns the extensions in the order the JavaScript runtime must load them. The
//! same list (with the same order) must be used when a startup snapshot is created and when an
//! isolate is restored from it.

mod console;
mod digest;
mod html_rewriter;
mod net_policy;

use std::sync::Arc;

pub use console::{ConsoleBudget, ConsoleLabel, LINE_BYTES as CONSOLE_LINE_BYTES, console_line};
pub use net_policy::{NetPolicy, NetPolicyError, is_public};

// deno_fetch's HTTP-client module imports `ext:deno_net/02_tls.js` (for
// `Deno.createHttpClient` client certificates, which Workers do not have). Shipping deno_net
// itself would bring raw TCP, UDP and QUIC ops; this extension provides just that module, whose
// one function refuses. It must carry deno_net's name for the specifier to resolve.
deno_core::extension!(
    deno_net,
    lazy_loaded_js = [dir "js", "02_tls.js"],
);

deno_core::extension!(
    edge_web,
    deps = [deno_webidl, deno_web, deno_crypto, deno_fetch],
    ops = [
        console::op_edge_console,
        digest::op_edge_digest_new,
        digest::op_edge_digest_update,
        digest::op_edge_digest_finish,
        html_rewriter::op_edge_html_selector,
        html_rewriter::op_edge_html_new,
        html_rewriter::op_edge_html_write,
        html_rewriter::op_edge_html_end,
        html_rewriter::op_edge_html_return,
        html_rewriter::op_edge_html_call,
        html_rewriter::op_edge_html_close,
    ],
    esm_entry_point = "ext:edge_web/00_globals.js",
    esm = [dir "js", "00_globals.js", "01_response.js", "03_html_rewriter.js", "04_request.js"],
    options = { label: ConsoleLabel },
    state = |state, options| {
        state.put(console::ConsoleOut::new(options.label));
    },
);

/// What an isolate's web extensions are configured with.
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// Who may be reached with outbound `fetch`.
    pub net: NetPolicy,
    /// The `tracing` fields attached to `console.*` output.
    pub console: ConsoleLabel,
    /// The `User-Agent` of outbound requests.
    pub user_agent: String,
}

/// The web extensions, in load order, with no app's settings yet: every isolate (and the startup
/// snapshot) is made from this list, then [`configure`] gives it its app's settings. Outbound
/// `fetch` is refused until then (the default [`NetPolicy`]).
pub fn extensions() -> Vec<deno_core::Extension> {
    vec![
        deno_webidl::deno_webidl::init(),
        deno_web::deno_web::init(
            Arc::new(deno_web::BlobStore::default()),
            None,
            false,
            deno_web::InMemoryBroadcastChannel::default(),
        ),
        deno_crypto::deno_crypto::init(None),
        deno_net::init(),
        deno_fetch::deno_fetch::init(deno_fetch::Options::default()),
        edge_web::init(ConsoleLabel::default()),
        permissions_extension::init(),
    ]
}

/// Gives an isolate made from [`extensions`] its app's settings: who outbound `fetch` may
/// reach, its `User-Agent`, and the label on `console` output. Call it before the app's code
/// runs (deno_fetch builds its HTTP client from these settings on the first `fetch`).
///
/// Fails only when the net policy names a host that cannot be parsed.
pub fn configure(
    state: &mut deno_core::OpState,
    options: WebOptions,
) -> Result<(), NetPolicyError> {
    let permissions = options.net.permissions()?;
    let mut fetch_options = deno_fetch::Options {
        user_agent: options.user_agent,
        ..Default::default()
    };
    options.net.apply(&mut fetch_options);
    state.put(fetch_options);
    state.put(permissions);
    state.put(console::ConsoleOut::new(options.console));
    Ok(())
}

deno_core::extension!(
    // Holds the permission container deno_fetch checks outbound requests against: until
    // [`configure`] replaces it, one that allows nothing.
    permissions_extension,
    state = |state| {
        state.put(net_policy::no_network());
    },
);
