//! The binding contract's wasm side: wasm guests have no Cache API interface yet, so nothing
//! is added to their linker.

use edge_binding::wasm::{Slots, StoreData, WasmBinding};
use wasmtime::component::Linker;

use crate::Cache;

impl WasmBinding for Cache {
    fn add_to_linker(&self, _linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn install(&self, _app: &Self::App, _named: &[(&str, u32)], _slots: &mut Slots) {}
}
