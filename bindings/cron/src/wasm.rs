//! Cron for WebAssembly guests (feature `wasm`): nothing to import. A trigger fires the
//! guest's `edge:runtime/scheduled-handler` export, which the node calls.

use edge_binding::wasm::{Slots, StoreData, WasmBinding};
use wasmtime::component::Linker;

use crate::Cron;

impl WasmBinding for Cron {
    fn add_to_linker(&self, _linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn install(&self, _app: &Self::App, _named: &[(&str, u32)], _slots: &mut Slots) {}
}
