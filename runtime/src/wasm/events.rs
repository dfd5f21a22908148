//! Events with no request (a cron trigger, a queue batch) through a fresh instance, calling
//! the component's `edge:runtime` handler exports; replies as the JavaScript worker gives
//! them (an empty `200`, or the queue handler's decisions as JSON).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use edge_binding::QueueBatch;
use edge_binding::wasm::StoreData;
use wasmtime::Store;

use super::exports::{consumer, scheduled};
use super::run::{AppRun, GuestCall};
use crate::error::{ErrorCode, InvokeError};
use crate::worker::{Reply, ScheduledEvent};

use consumer::exports::edge::runtime::queue_handler as q;
use scheduled::exports::edge::runtime::scheduled_handler as s;

struct Scheduled {
    pre: scheduled::ScheduledPre<StoreData>,
    controller: s::Controller,
}

impl GuestCall<Result<(), String>> for Scheduled {
    fn call(
        self,
        store: &mut Store<StoreData>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Result<(), String>>> + Send + '_>> {
        Box::pin(async move {
            let guest = self.pre.instantiate_async(&mut *store).await?;
            guest
                .edge_runtime_scheduled_handler()
                .call_scheduled(&mut *store, &self.controller)
                .await
        })
    }
}

struct Queue {
    pre: consumer::ConsumerPre<StoreData>,
    batch: q::MessageBatch,
}

impl GuestCall<q::Outcome> for Queue {
    fn call(
        self,
        store: &mut Store<StoreData>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<q::Outcome>> + Send + '_>> {
        Box::pin(async move {
            let guest = self.pre.instantiate_async(&mut *store).await?;
            guest
                .edge_runtime_queue_handler()
                .call_queue(&mut *store, &self.batch)
                .await
        })
    }
}

fn empty_ok() -> http::Response<crate::body::ResponseBody> {
    http::Response::new(crate::body::ResponseBody::empty())
}

impl AppRun {
    /// Runs the component's `scheduled` handler.
    pub(super) async fn scheduled(
        self: &Arc<Self>,
        event: ScheduledEvent,
        request_id: String,
    ) -> Reply {
        let Some(pre) = self.exports.scheduled.clone() else {
            return Err(InvokeError::new(
                ErrorCode::ScriptError,
                "the component has no scheduled handler (it does not export edge:runtime/scheduled-handler)",
            ));
        };
        let controller = s::Controller {
            cron: event.cron,
            scheduled_time: event.scheduled_time.max(0.0) as u64,
        };
        let running = self.spawn(Scheduled { pre, controller });
        match self.finish(running, &request_id).await? {
            Ok(()) => Ok(empty_ok()),
            Err(message) => {
                tracing::error!(target: "edge::script", tenant = &*self.tenant, %request_id, "the scheduled handler failed: {message}");
                Err(InvokeError::new(ErrorCode::ScriptError, message))
            }
        }
    }

    /// Runs the component's `queue` handler; the reply's body is its decisions as JSON.
    pub(super) async fn queue(self: &Arc<Self>, batch: QueueBatch, request_id: String) -> Reply {
        let Some(pre) = self.exports.consumer.clone() else {
            return Err(InvokeError::new(
                ErrorCode::ScriptError,
                "the component has no queue handler (it does not export edge:runtime/queue-handler)",
            ));
        };
        let batch = q::MessageBatch {
            queue: batch.queue,
            messages: batch
                .messages
                .into_iter()
                .map(|m| q::Message {
                    id: m.id,
                    timestamp: m.timestamp_ms,
                    body: m.body,
                    content_type: m.content_type,
                    attempts: m.attempts,
                })
                .collect(),
        };
        let running = self.spawn(Queue { pre, batch });
        let outcome = self.finish(running, &request_id).await?;
        if let Some(message) = &outcome.error {
            tracing::error!(target: "edge::script", tenant = &*self.tenant, %request_id, "the queue handler failed: {message}");
        }
        let report = serde_json::json!({
            "acks": outcome.acks,
            "retries": outcome
                .retries
                .iter()
                .map(|(id, delay)| serde_json::json!([id, delay]))
                .collect::<Vec<_>>(),
            "ackAll": outcome.ack_all,
            "retryAll": outcome.retry_all,
            "retryAllDelay": outcome.retry_all_delay,
            "error": outcome.error,
        });
        Ok(http::Response::new(report.to_string().into()))
    }
}
