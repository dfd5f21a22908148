//! `GET /v1/apps`: the apps a node serves, each with its version, status, last load error,
//! limits and usage since the node started (the serverless cost model: invocations, CPU-ms,
//! GB-seconds); and the errors of apps it cannot serve.

use serde_json::{Value, json};

use crate::limits::LimitKind;
use crate::node::Node;

/// The body of `GET /v1/apps`.
pub(super) fn list(node: &Node) -> Value {
    let mut errors = node.last_errors();
    let apps: Vec<Value> = node
        .versions()
        .into_iter()
        .map(|(tenant, version)| {
            let app = tenant.app();
            let limits = tenant.limits();
            let stats = tenant.stats();
            let last_error = errors
                .remove(tenant.name())
                .or_else(|| errors.remove(&app.root.display().to_string()));
            let is_wasm = app.main.extension().is_some_and(|e| e == "wasm");
            let terminations: serde_json::Map<String, Value> = LimitKind::ALL
                .iter()
                .map(|k| (k.key().to_string(), stats.terminations_for(*k).into()))
                .collect();
            let responses: serde_json::Map<String, Value> = stats
                .responses
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{}xx", i + 1), (*n).into()))
                .collect();
            json!({
                "name": tenant.name(),
                "version": version,
                "folder": app.root.display().to_string(),
                "main": app.main.display().to_string(),
                "engine": if is_wasm { "wasm" } else { "javascript" },
                "status": if tenant.is_running() { "running" } else { "idle" },
                "last_error": last_error,
                "limits": {
                    "cpu_ms": limits.cpu.as_millis() as u64,
                    "memory_mb": (limits.memory_bytes >> 20) as u64,
                    "wall_ms": limits.wall.as_millis() as u64,
                    "subrequests": limits.subrequests,
                    "concurrent_requests": limits.concurrent_requests,
                    "request_body_mb": limits.request_body_bytes >> 20,
                    "websockets": limits.websockets,
                },
                "usage": {
                    "invocations": stats.invocations,
                    "cpu_ms": stats.cpu.as_secs_f64() * 1000.0,
                    "wall_ms": stats.wall.as_secs_f64() * 1000.0,
                    "gb_seconds": stats.gb_seconds(),
                    "peak_heap_bytes": stats.peak_heap_bytes,
                    "responses": responses,
                    "terminations": terminations,
                },
                "requests_now": tenant.gate().in_use(),
                "websockets_open": tenant.counters().websockets_open(),
                "requests_waiting": tenant.gate().waiting(),
            })
        })
        .collect();
    // What is left: apps not served at all (their config does not read, or they claim what
    // another app has).
    let unserved: Vec<Value> = errors
        .into_iter()
        .map(|(app, error)| json!({ "app": app, "error": error }))
        .collect();
    json!({ "apps": apps, "not_served": unserved })
}
