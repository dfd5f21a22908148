//! The cron route of the node's admin endpoint: `POST /v1/cron/trigger?app=NAME&cron=EXPR`
//! runs the app's `scheduled` handler now (for `edge trigger cron`), with `cron` defaulting to
//! the app's first expression. Answers `{"ran": true}`, or the handler's error with its code.

use std::sync::Arc;

use edge_binding::HostEvent;
use edge_binding::admin::{AdminFuture, AdminRequest, error, json};
use http::{Method, StatusCode};

use crate::binding::CronNode;

/// The reply to `request` if its path is cron's.
pub(crate) fn route(node: Arc<CronNode>, request: &mut AdminRequest) -> Option<AdminFuture> {
    if request.segments != ["cron", "trigger"] {
        return None;
    }
    if request.method != Method::POST {
        return Some(Box::pin(async {
            error(StatusCode::METHOD_NOT_ALLOWED, "use POST")
        }));
    }
    let Some(app) = request.query.get("app").cloned() else {
        return Some(Box::pin(async {
            error(StatusCode::BAD_REQUEST, "name the app: ?app=NAME")
        }));
    };
    let cron = request
        .query
        .get("cron")
        .cloned()
        .or_else(|| node.first_cron(&app))
        .unwrap_or_default();
    Some(Box::pin(async move {
        let Some(host) = node.host() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the node is not serving yet",
            );
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64);
        let event = HostEvent::Scheduled {
            cron: cron.clone(),
            scheduled_time: now,
        };
        match host.dispatch(&app, event).await {
            Ok(_) => json(
                StatusCode::OK,
                serde_json::json!({ "ran": true, "app": app, "cron": cron }),
            ),
            Err(e) => {
                let status = if e.code == "no-such-app" {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                json(
                    status,
                    serde_json::json!({ "error": e.message, "code": e.code }),
                )
            }
        }
    }))
}
