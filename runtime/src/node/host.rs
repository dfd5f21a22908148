//! The node as its bindings' triggers see it ([`edge_binding::Host`]): cron and queue
//! consumers run an app's handler by the app's name, through the same tenant, worker and
//! limits as a request.

use std::sync::{Arc, Weak};

use edge_binding::{DispatchError, DispatchFuture, Host, HostEvent, HostReply, QueueOutcome};

use super::Node;
use crate::RequestIds;
use crate::worker::{Event, ScheduledEvent};

/// Runs bindings' events on a node's tenants. Holds the node weakly: a stopped node's
/// triggers find no app.
pub(super) struct NodeHost {
    pub(super) node: Weak<Node>,
    pub(super) ids: RequestIds,
}

impl Host for NodeHost {
    fn dispatch(&self, app: &str, event: HostEvent) -> DispatchFuture {
        let tenant = self.node.upgrade().and_then(|node| {
            node.current
                .load()
                .served()
                .iter()
                .find(|s| s.tenant.name() == app)
                .map(|s| s.tenant.clone())
        });
        let request_id = self.ids.next();
        let app = app.to_string();
        Box::pin(async move {
            let Some(tenant) = tenant else {
                return Err(DispatchError {
                    code: "no-such-app".into(),
                    message: format!("the node serves no app named {app:?}"),
                });
            };
            let (event, is_queue) = match event {
                HostEvent::Scheduled {
                    cron,
                    scheduled_time,
                } => {
                    tracing::info!(tenant = %app, %request_id, %cron, "running the scheduled handler");
                    let event = Event::Scheduled(ScheduledEvent {
                        cron,
                        scheduled_time,
                    });
                    (event, false)
                }
                HostEvent::Queue(batch) => {
                    tracing::debug!(tenant = %app, %request_id, queue = %batch.queue, messages = batch.messages.len(), "running the queue handler");
                    (Event::Queue(batch), true)
                }
                other => {
                    return Err(DispatchError {
                        code: "unsupported".into(),
                        message: format!("this node cannot run {other:?}"),
                    });
                }
            };
            let response = tenant
                .dispatch(request_id, event)
                .await
                .map_err(|e| DispatchError {
                    code: e.code.as_str().into(),
                    message: e.message.to_string(),
                })?;
            if !is_queue {
                return Ok(HostReply::Done);
            }
            queue_outcome(response).await.map(HostReply::Queue)
        })
    }
}

/// What a `queue` handler reported (its reply's body, as `host.js` writes it).
async fn queue_outcome(
    response: http::Response<crate::body::ResponseBody>,
) -> Result<QueueOutcome, DispatchError> {
    let bad = |message: String| DispatchError {
        code: "script-error".into(),
        message,
    };
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| bad(format!("the queue handler's report could not be read: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the queue handler's report is not valid: {e}")))
}

impl Node {
    /// Starts the node's triggers (cron, queue consumers): its bindings learn which apps it
    /// serves, now and after every reload, and run their handlers through it. Call once,
    /// inside the tokio runtime that serves the node.
    pub fn attach_bindings(self: &Arc<Self>) {
        let _ = self.host.set(Arc::new(NodeHost {
            node: Arc::downgrade(self),
            ids: RequestIds::new(),
        }));
        self.attach_table();
    }

    /// Tells the bindings what the node serves now (if its triggers were started).
    pub(super) fn attach_table(&self) {
        let Some(host) = self.host.get() else {
            return;
        };
        let table = self.current.load();
        let stopping = self.stopping.load(std::sync::atomic::Ordering::Acquire);
        let apps: Vec<(&str, &[edge_binding::DeclaredBinding])> = table
            .served()
            .iter()
            .filter(|_| !stopping)
            .map(|s| (s.tenant.name(), s.tenant.app().bindings.as_slice()))
            .collect();
        self.options.bindings.attach(&apps, host);
    }
}
