//! The deno_core adapter: `env.JOBS` (a producer) in JavaScript. The ops only check Workers'
//! rules and call the store; `js/01_queue.js` gives them the Workers `Queue` shape and encodes
//! bodies by content type.

use std::cell::RefCell;
use std::rc::Rc;

use deno_core::{JsBuffer, OpState, op2};

use crate::binding::{QueueBindings, Queues};
use crate::error::QueueError;
use crate::message::{ContentType, NewMessage};
use crate::rules;

deno_core::extension!(
    edge_queue,
    deps = [deno_web, edge_binding],
    ops = [op_queue_send],
    esm_entry_point = "ext:edge_queue/01_queue.js",
    esm = [dir "js", "01_queue.js"],
    state = |state| {
        state.put(QueueBindings::default());
    },
);

impl edge_binding::js::JsBinding for Queues {
    fn extension(&self) -> Option<deno_core::Extension> {
        Some(edge_queue::init())
    }

    fn install(&self, app: &QueueBindings, state: &mut OpState) {
        state.put(app.clone());
    }
}

/// `send`/`sendBatch`: `bodies` holds every encoded body one after another; `parts` gives
/// each message's content type, length and `delaySeconds` (or null). Resolves once durable.
#[op2]
async fn op_queue_send(
    state: Rc<RefCell<OpState>>,
    #[smi] index: u32,
    #[buffer] bodies: JsBuffer,
    #[serde] parts: Vec<(String, u32, Option<f64>)>,
) -> Result<(), QueueError> {
    rules::check_batch(parts.len(), bodies.len())?;
    let (queue, default_delay, store, _waiting) = {
        let state = state.borrow();
        let bindings = state.borrow::<QueueBindings>();
        let (queue, delay, store) = bindings.producer(index)?;
        let waiting = bindings.reserve(bodies.len() as u64)?;
        (queue.to_string(), delay, store.clone(), waiting)
    };
    let mut messages = Vec::with_capacity(parts.len());
    let mut at = 0usize;
    for (content_type, len, delay) in parts {
        let len = len as usize;
        let body = bodies
            .get(at..at + len)
            .ok_or_else(|| QueueError::Rule("message lengths do not match the bodies".into()))?;
        at += len;
        rules::check_message(len)?;
        let content_type = ContentType::parse(&content_type).ok_or_else(|| {
            QueueError::Rule(format!(
                "contentType {content_type:?} is not one of json, text, bytes, v8"
            ))
        })?;
        let delay_secs = match delay {
            Some(d) => rules::check_delay(d)?,
            None => default_delay,
        };
        messages.push(NewMessage {
            body: body.to_vec(),
            content_type,
            delay_secs,
        });
    }
    store.send(&queue, messages).await
}
