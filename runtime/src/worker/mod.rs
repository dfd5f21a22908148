//! The one interface a tenant's code runs behind, whatever the engine: a [`Worker`] takes
//! [`Invocation`]s (requests and other events), loads the app, and retires. The JavaScript
//! isolate machinery is one implementation (`isolate::JsWorker`); wasmtime is the other
//! (`wasm::WasmWorker`). Compare Spin's `HttpExecutor` and workerd's `WorkerInterface`.

mod cf;
mod event;
mod load_error;

use std::future::Future;
use std::pin::Pin;

pub use cf::{CfConfig, CfError, ConnectionCf, RequestCf, TlsInfo, boringssl_cipher_name};
pub use event::{
    Event, FetchRequest, Invocation, InvocationBody, Reply, RequestBody, ScheduledEvent,
};
pub use load_error::LoadError;

use crate::isolate::LocalTask;

/// How loading an app ended.
pub type LoadResult = Result<(), LoadError>;

/// Runs one app's code for its tenant.
pub trait Worker: Send + Sync + 'static {
    /// Handles `inv`, starting whatever runs the app if nothing does; the reply arrives on the
    /// invocation's oneshot, whatever happens.
    fn invoke(&self, inv: Invocation);

    /// Runs `task` (serving a connection whose requests are for this app) beside the code
    /// that answers them, or gives it back to be run elsewhere.
    fn adopt(&self, task: LocalTask) -> Result<(), LocalTask>;

    /// Loads the app if it is not loaded, and waits until it is, or failed.
    fn load(&self) -> Pin<Box<dyn Future<Output = LoadResult> + Send + '_>>;

    /// Stops taking invocations: what is in flight finishes, then it stops. A later
    /// invocation starts it again.
    fn retire(&self);

    /// Whether the app is loaded or loading.
    fn is_running(&self) -> bool;
}
