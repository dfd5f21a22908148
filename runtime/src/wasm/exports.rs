//! What an app's component exports, linked once per app version: the fetch handler
//! (`wasi:http/incoming-handler`, the proxy world), the `scheduled` handler and the `queue`
//! handler (`edge:runtime`, `bindings/wit/runtime.wit`). A component must export at least
//! one of them.

use edge_binding::wasm::StoreData;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The host side of the `scheduled` world.
pub(super) mod scheduled {
    wasmtime::component::bindgen!({
        path: "../bindings/wit",
        world: "edge:runtime/scheduled",
        exports: { default: async },
    });
}

/// The host side of the `consumer` world.
pub(super) mod consumer {
    wasmtime::component::bindgen!({
        path: "../bindings/wit",
        world: "edge:runtime/consumer",
        exports: { default: async },
    });
}

/// The handlers a linked component exports.
pub(super) struct Exports {
    /// `wasi:http/incoming-handler`.
    pub(super) proxy: Option<ProxyPre<StoreData>>,
    /// `edge:runtime/scheduled-handler`.
    pub(super) scheduled: Option<scheduled::ScheduledPre<StoreData>>,
    /// `edge:runtime/queue-handler`.
    pub(super) consumer: Option<consumer::ConsumerPre<StoreData>>,
}

impl Exports {
    /// The handlers `pre` exports, or why it exports none edge can call.
    pub(super) fn of(pre: InstancePre<StoreData>) -> Result<Self, String> {
        let exports = Self {
            proxy: ProxyPre::new(pre.clone()).ok(),
            scheduled: scheduled::ScheduledPre::new(pre.clone()).ok(),
            consumer: consumer::ConsumerPre::new(pre).ok(),
        };
        if exports.proxy.is_none() && exports.scheduled.is_none() && exports.consumer.is_none() {
            return Err(
                "it exports no handler edge can call: wasi:http/incoming-handler (fetch), edge:runtime/scheduled-handler or edge:runtime/queue-handler"
                    .into(),
            );
        }
        Ok(exports)
    }
}
