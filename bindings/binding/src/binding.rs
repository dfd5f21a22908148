//! [`Binding`]: what one kind of binding provides a node.

use std::fmt::Debug;
use std::sync::Arc;

use crate::admin::{AdminFuture, AdminRequest};
use crate::config::{ConfigIssue, Declared, Section};
use crate::host::Host;
use crate::store::{NodeStore, StoreError};

/// One kind of binding (KV namespaces, queue producers, …): how it is configured, where its
/// node-wide data lives, and what an app is handed. Engine-free: the JavaScript side is
/// [`crate::js::JsBinding`], the wasm side `wasm::WasmBinding` (features `js`, `wasm`).
pub trait Binding: Send + Sync + 'static {
    /// One entry of the binding's `edge.toml` section, validated.
    type Entry: Debug + Send + Sync + 'static;
    /// The node-wide storage every app's entries share, opened once.
    type Node: Send + Sync + 'static;
    /// What one app's code is handed for all its entries of this kind.
    type App: Send + Sync + 'static;

    /// The kind, as the JavaScript side and the logs know it (`"kv"`).
    fn kind(&self) -> &'static str;

    /// The top-level `edge.toml` key holding its entries (`Some("kv_namespaces")`), or `None`
    /// for an ambient binding, which every app has without declaring it (the Cache API's
    /// `caches`): its [`Binding::configure`] is called for every app, with no entries, and its
    /// storage is opened when the first app loads.
    fn config_key(&self) -> Option<&'static str>;

    /// Reads the binding's entries from its section of an app's `edge.toml`, each with the
    /// name it puts on `env` (if any). Only called when the key is present. The runtime checks
    /// that the names are JavaScript identifiers free on `env`.
    fn parse(&self, section: &Section<'_>) -> Result<Vec<Declared<Self::Entry>>, ConfigIssue>;

    /// The node-wide resource `entry` claims, if any: two apps claiming the same exclusive
    /// resource is a config error for the second (an app cannot take what belongs to another
    /// by naming it in its own config).
    fn claim(&self, _entry: &Self::Entry) -> Option<Claim> {
        None
    }

    /// Why an app may not claim `resource`, which `owner` has: the error the second app gets,
    /// saying how the operator could allow it if they can.
    fn claimed(&self, resource: &str, owner: &str) -> String {
        format!("{resource:?} belongs to app {owner:?}")
    }

    /// Opens the binding's node-wide storage in `store` (called once, when an app first needs
    /// it, or at start on a node that keeps its storage open for the CLI).
    fn open(&self, store: &NodeStore) -> Result<Self::Node, StoreError>;

    /// What the app `app` is handed for `entries` (in `edge.toml` order: an entry's index is
    /// its position), on the node's storage.
    fn configure(
        &self,
        node: &Arc<Self::Node>,
        app: &AppInfo<'_>,
        entries: &[&Self::Entry],
    ) -> Self::App;

    /// Follows what the node serves: `apps` are the served apps that declare entries of this
    /// kind, with them (every served app, with none, for an ambient binding; called at start
    /// and after every change; an empty list when none does any more). A trigger (cron, a queue consumer) starts, changes or stops its work here,
    /// and runs handlers through `host`. Must be called inside a tokio runtime.
    fn attach(
        &self,
        _node: &Arc<Self::Node>,
        _apps: &[(&str, Vec<&Self::Entry>)],
        _host: &Arc<dyn Host>,
    ) {
    }

    /// Answers an admin request meant for this binding (for its CLI commands on a running
    /// node), or `None` if the path is not one of its own.
    fn admin(&self, _node: &Arc<Self::Node>, _request: &mut AdminRequest) -> Option<AdminFuture> {
        None
    }

    /// The binding's samples for the node's metrics, read now (operations counted, messages
    /// waiting, …). None by default.
    fn metrics(&self, _node: &Arc<Self::Node>) -> Vec<crate::MetricSample> {
        Vec::new()
    }
}

/// What a binding learns about the app it configures.
#[derive(Clone, Copy, Debug)]
pub struct AppInfo<'a> {
    /// The app's name.
    pub name: &'a str,
    /// The app's memory limit in bytes: a bound for what the binding holds for it outside the
    /// engine's heap (writes awaiting commit, …).
    pub memory_limit: u64,
}

/// A node-wide resource an entry claims (a KV namespace id, the consumer side of a queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The resource, unique within the binding's kind.
    pub resource: String,
    /// Whether other apps may claim it too (the operator said they may share it).
    pub shared: bool,
}
