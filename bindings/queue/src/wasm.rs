//! Queue producers for WebAssembly guests (feature `wasm`): `edge:runtime/queue`'s `send` and
//! `send-batch`, through the same rules, pending-send bound and store as JavaScript's
//! `env.QUEUE.send`. A guest names a producer by its `binding` in `edge.toml`; any other name
//! is an error, so a guest reaches only the queues its config binds. Bodies are `json`,
//! `text` or `bytes` (the default); `v8` is JavaScript's own encoding and not accepted here.

use std::collections::HashMap;

use edge_binding::wasm::{Slots, StoreData, WasmBinding};
use wasmtime::component::{HasData, Linker};

use crate::binding::{QueueBindings, Queues};
use crate::error::QueueError;
use crate::message::{ContentType, NewMessage};
use crate::rules;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "edge:runtime/producer",
        imports: { default: async | trappable },
    });
}

use generated::edge::runtime::queue;

/// What an app's wasm guests may reach of queues: the app's producers, by binding name.
pub struct QueueSlot {
    bindings: QueueBindings,
    names: HashMap<String, u32>,
}

/// The host side, over the invocation's slot.
pub struct QueueHost<'a> {
    slot: Option<&'a QueueSlot>,
}

struct QueueData;

impl HasData for QueueData {
    type Data<'a> = QueueHost<'a>;
}

fn host(data: &mut StoreData) -> QueueHost<'_> {
    QueueHost {
        slot: data.slots.get::<QueueSlot>(),
    }
}

impl WasmBinding for Queues {
    fn add_to_linker(&self, linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
        queue::add_to_linker::<StoreData, QueueData>(linker, host)
    }

    fn install(&self, app: &QueueBindings, named: &[(&str, u32)], slots: &mut Slots) {
        slots.insert(QueueSlot {
            bindings: app.clone(),
            names: edge_binding::wasm::names(named),
        });
    }
}

impl QueueHost<'_> {
    async fn send(
        &self,
        binding: &str,
        messages: Vec<(Vec<u8>, queue::SendOptions)>,
    ) -> Result<(), QueueError> {
        let (slot, index) = self
            .slot
            .and_then(|s| Some((s, *s.names.get(binding)?)))
            .ok_or_else(|| {
                QueueError::Rule(format!(
                    "this app binds no queue producer named {binding:?}"
                ))
            })?;
        let bytes: usize = messages.iter().map(|(b, _)| b.len()).sum();
        rules::check_batch(messages.len(), bytes)?;
        let (queue, default_delay, store) = slot.bindings.producer(index)?;
        let _waiting = slot.bindings.reserve(bytes as u64)?;
        let mut batch = Vec::with_capacity(messages.len());
        for (body, options) in messages {
            rules::check_message(body.len())?;
            let content_type = match options.content_type.as_deref() {
                None => ContentType::Bytes,
                Some(name) => match ContentType::parse(name) {
                    Some(ContentType::V8) | None => {
                        return Err(QueueError::Rule(format!(
                            "content-type {name:?} is not one of json, text, bytes"
                        )));
                    }
                    Some(t) => t,
                },
            };
            let delay_secs = match options.delay_seconds {
                Some(d) => rules::check_delay(f64::from(d))?,
                None => default_delay,
            };
            batch.push(NewMessage {
                body,
                content_type,
                delay_secs,
            });
        }
        store.send(queue, batch).await
    }
}

impl queue::Host for QueueHost<'_> {
    async fn send(
        &mut self,
        binding: String,
        body: Vec<u8>,
        options: queue::SendOptions,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(QueueHost::send(self, &binding, vec![(body, options)])
            .await
            .map_err(|e| e.to_string()))
    }

    async fn send_batch(
        &mut self,
        binding: String,
        messages: Vec<queue::BatchEntry>,
    ) -> wasmtime::Result<Result<(), String>> {
        let messages = messages.into_iter().map(|m| (m.body, m.options)).collect();
        Ok(QueueHost::send(self, &binding, messages)
            .await
            .map_err(|e| e.to_string()))
    }
}
