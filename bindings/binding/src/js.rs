//! The JavaScript side of the contract (feature `js`): a binding's deno_core extension and
//! how it installs an app's bindings into an isolate; and `ext:edge_binding/registry.js`,
//! where each binding's script says how to make its kind's object and the host builds `env`.

use std::sync::Arc;

use deno_core::{OpState, op2};

use crate::binding::Binding;

/// What a binding adds for JavaScript isolates.
pub trait JsBinding: Binding {
    /// The binding's extension, without per-app state (every isolate gets it, and the startup
    /// snapshot holds its scripts); `None` for a binding that puts nothing on `env` (a
    /// trigger). Its entry-point script must call `defineBinding(kind, make)` from
    /// `ext:edge_binding/registry.js`, where `make(index)` returns the object `env` gets for
    /// the app's entry at `index`; it must list `edge_binding` in its `deps`.
    fn extension(&self) -> Option<deno_core::Extension>;

    /// Puts `app` (what [`Binding::configure`] made for the app) into a new isolate's op
    /// state, for the binding's ops.
    fn install(&self, app: &Self::App, state: &mut OpState);
}

/// The app's bindings as `[name, kind, index]`, in an isolate's op state.
#[derive(Clone, Default)]
pub struct BindingList(pub(crate) Arc<Vec<(String, &'static str, u32)>>);

deno_core::extension!(
    edge_binding,
    ops = [op_binding_list],
    esm = [dir "js", "registry.js"],
    state = |state| {
        state.put(BindingList::default());
    },
);

/// The app's bindings as `[name, kind, index]`.
#[op2]
#[serde]
fn op_binding_list(state: &mut OpState) -> Vec<(String, &'static str, u32)> {
    state.borrow::<BindingList>().0.to_vec()
}
