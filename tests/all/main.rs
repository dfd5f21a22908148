//! Integration tests: the real `edge` binary, bound to 127.0.0.1:0, against the fixture apps in
//! `tests/fixtures/`, with a real HTTP client. One test binary with a module per area.

mod harness;

mod cache_api;
mod cli;
mod connections;
mod corpus;
mod cron;
mod encoding;
mod errors;
mod events;
mod handlers;
mod hardening;
mod hot_reload;
mod html_rewriter;
mod isolates;
mod kv;
mod limits;
mod node_admin;
// Node.js modules run on V8 only (the QuickJS build refuses them: `quickjs_refuses_node`).
#[cfg(not(feature = "quickjs"))]
mod nodejs_compat;
mod outbound;
mod pool;
mod projects;
mod queues;
mod reload;
mod routing;
mod streaming;
mod tls;
mod typescript;
mod wasm;
mod web_apis;
mod websockets;
