//! The node as its bindings' triggers see it ([`edge_binding::Host`]): cron and queue
//! consumers run an app's handler by the app's name, through the same tenant, worker and
//! limits as a request.

use std::sync::{Arc, Weak};

use edge_binding::{DispatchError, DispatchFuture, Host, HostEvent};

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
            let event = match event {
                HostEvent::Scheduled {
                    cron,
                    scheduled_time,
                } => {
                    tracing::info!(tenant = %app, %request_id, %cron, "running the scheduled handler");
                    Event::Scheduled(ScheduledEvent {
                        cron,
                        scheduled_time,
                    })
                }
                other => {
                    return Err(DispatchError {
                        code: "unsupported".into(),
                        message: format!("this node cannot run {other:?}"),
                    });
                }
            };
            tenant
                .dispatch(request_id, event)
                .await
                .map(drop)
                .map_err(|e| DispatchError {
                    code: e.code.as_str().into(),
                    message: e.message.to_string(),
                })
        })
    }
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
        let apps: Vec<(&str, &[edge_binding::DeclaredBinding])> = table
            .served()
            .iter()
            .map(|s| (s.tenant.name(), s.tenant.app().bindings.as_slice()))
            .collect();
        self.options.bindings.attach(&apps, host);
    }
}
