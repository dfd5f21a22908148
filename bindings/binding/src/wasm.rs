//! The WebAssembly side of the contract (feature `wasm`): what a wasm invocation's store
//! holds ([`StoreData`]: WASI, wasi:http, the node's limiter and outbound policy, and each
//! binding's per-invocation state in [`Slots`]), and what a binding adds for wasm guests
//! ([`WasmBinding`]: its host interfaces on the linker, and what it puts in an invocation's
//! slots). The bindings' WIT lives in `bindings/wit/` (wasi:keyvalue, edge:runtime).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::binding::Binding;

/// One wasm invocation's store data.
pub struct StoreData {
    /// WASI 0.2 (stdio, clocks, random; no sockets or files).
    pub wasi: WasiCtx,
    /// wasi:http.
    pub http: WasiHttpCtx,
    /// The store's resources (requests, bodies, buckets, …).
    pub table: ResourceTable,
    /// The outbound-request policy (the node's `fetch` rules and subrequest count).
    pub hooks: Box<dyn WasiHttpHooks>,
    /// What the guest's memories and tables may grow to.
    pub limiter: Box<dyn wasmtime::ResourceLimiter + Send>,
    /// What each binding was handed for the app: made once per app version, shared by its
    /// invocations.
    pub slots: Arc<Slots>,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: self.hooks.as_mut(),
        }
    }
}

/// What the bindings hand an app's guests, one value per type. Read-only once made: an
/// invocation's own state (open buckets, …) lives in the store's resource table.
#[derive(Default)]
pub struct Slots(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Slots {
    /// Stores `value`, replacing one of its type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// What a binding adds for WebAssembly guests.
pub trait WasmBinding: Binding {
    /// Adds the host side of the binding's interfaces to a linker (every component is linked
    /// against every registered binding; a guest that imports none of them is unaffected).
    fn add_to_linker(&self, linker: &mut Linker<StoreData>) -> wasmtime::Result<()>;

    /// Puts what `app` was handed (by [`Binding::configure`]) into the `slots` its guests
    /// get (once per app version). `named` gives the app's entries of this kind that have a name, with their
    /// index: the name a guest opens a binding by.
    fn install(&self, app: &Self::App, named: &[(&str, u32)], slots: &mut Slots);
}

/// The index of each of an app's named entries, by name: what a guest opens a binding by.
pub fn names(named: &[(&str, u32)]) -> HashMap<String, u32> {
    named.iter().map(|(n, i)| (n.to_string(), *i)).collect()
}
