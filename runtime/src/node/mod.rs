//! A node: the tenants it hosts and how requests find them.
//!
//! `edge serve` hosts every app folder of an apps directory and routes by Host and path;
//! `edge dev` hosts one app and sends it every request. What a node serves can change while it
//! runs ([`Node::reload`]): the apps are read again, and the routing table and tenants are
//! replaced whole, keeping the tenants of apps that did not change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod fingerprint;
mod host;
mod local_vars;
mod reload;
mod settle;
mod table;
mod watch;

use arc_swap::ArcSwap;

use edge_binding::Registry;

use crate::config::{AppConfig, ConfigError};
use crate::limits::NodeLimits;
use crate::router::RouteConflict;
use crate::tenant::{Tenant, TenantShared};

pub use local_vars::{LocalVars, ReadVars};
pub use reload::Reloaded;
use table::Table;
pub use watch::{WatchError, WatchReload, Watcher};

/// How a node runs its tenants.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// How long an isolate with nothing to do stays warm.
    pub idle_timeout: Duration,
    /// Put error details (load errors) in response bodies. On in `edge dev`, off in `edge serve`.
    pub expose_errors: bool,
    /// Where the startup snapshot is cached.
    pub cache_dir: Option<PathBuf>,
    /// Limit defaults and ceilings for the node's apps.
    pub limits: NodeLimits,
    /// Enforce CPU and wall-clock limits. Off only to measure what enforcing them costs.
    pub enforce_limits: bool,
    /// The bindings the node hosts, and where they keep their data.
    pub bindings: Registry,
    /// Open every binding's storage at start, even one no app binds (so the CLI can reach it
    /// through the node's admin endpoint). Otherwise a binding's storage opens when the first
    /// app that binds it loads.
    pub open_storage: bool,
    /// How many blank isolates to keep restored and waiting for an app (the warm pool), so a
    /// first request does not wait for a restore. 0: none; every isolate starts on demand.
    pub warm_isolates: usize,
    /// What the front door allows one request.
    pub front_door: crate::server::FrontDoorLimits,
    /// Which apps may have their `[outbound] allow_private` (reach loopback and private
    /// networks). An app cannot grant itself that: the operator does.
    pub private_network: AppGrant,
    /// Which apps may have `nodejs_compat` (Deno's Node modules, whose ops have not all been
    /// checked against hostile input: see the README). An app cannot grant itself that.
    pub nodejs_compat: AppGrant,
    /// Answer `/__scheduled?cron=…` by running the app's `scheduled` handler, as `wrangler dev
    /// --test-scheduled` does (`edge dev --test-scheduled`; never on a node).
    pub test_scheduled: bool,
    /// Apps whose routes may have a wildcard host (`*`, `*.example.com`, `*example.com`): a
    /// wildcard claims hosts no app has named, so only the operator hands one out. An app with
    /// one that is not granted is skipped.
    pub wildcard_routes: AppGrant,
    /// Wasm instances that may run at once on the node (sizes the pooling allocator).
    pub wasm_instances: u32,
    /// Variables set on the command line (`edge dev --var KEY=VALUE`), over the app's own
    /// `[vars]` (as text, like wrangler's `--var`).
    pub vars: Vec<(String, String)>,
    /// The environment (`[env.<name>]` of each app's config, as `wrangler --env`) to run;
    /// `None`: the top level.
    pub env: Option<String>,
    /// The node's part of `request.cf`: its colo name, fixed geo values, the trusted geo
    /// header.
    pub cf: std::sync::Arc<crate::worker::CfConfig>,
    /// `edge dev`'s local secrets (`.dev.vars`), read each time the app loads, under
    /// [`NodeOptions::vars`] (which wins).
    pub local_vars: Option<LocalVars>,
}

/// Which apps the operator grants something an app cannot grant itself: private-network
/// access (`[outbound] allow_private`), wildcard routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppGrant {
    /// Only the apps with these names (none: the default of a node).
    Apps(Vec<String>),
    /// Any app that asks (`edge dev`: the developer runs their own app).
    AnyApp,
}

impl Default for AppGrant {
    fn default() -> Self {
        Self::Apps(Vec::new())
    }
}

impl AppGrant {
    /// Whether the app named `name` has the grant (if it asks for what it grants).
    pub fn grants(&self, name: &str) -> bool {
        match self {
            Self::Apps(names) => names.iter().any(|n| n == name),
            Self::AnyApp => true,
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            expose_errors: false,
            cache_dir: crate::isolate::snapshot::default_cache_dir(),
            limits: NodeLimits::default(),
            enforce_limits: true,
            bindings: Registry::default(),
            open_storage: false,
            warm_isolates: 0,
            front_door: Default::default(),
            private_network: AppGrant::default(),
            nodejs_compat: AppGrant::default(),
            wildcard_routes: AppGrant::default(),
            test_scheduled: false,
            wasm_instances: 1000,
            vars: Vec::new(),
            env: None,
            cf: Default::default(),
            local_vars: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The apps directory could not be read.
    #[error("cannot read the apps directory {path}: {source}")]
    AppsDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The one app of `edge dev` has a bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two apps claim the same route.
    #[error(transparent)]
    Route(#[from] RouteConflict),
    /// The startup snapshot could not be made.
    #[error(transparent)]
    Snapshot(#[from] crate::isolate::snapshot::SnapshotError),
    /// A binding's storage could not be opened.
    #[error("cannot open the {kind} store: {source}")]
    Store {
        /// The binding's kind.
        kind: &'static str,
        /// Why.
        source: edge_binding::StoreError,
    },
}

/// Where a node's apps come from, so it can read them again.
#[derive(Clone, Debug)]
enum Source {
    /// One app folder (`edge dev`): it gets every request.
    Single(PathBuf),
    /// Every app folder of a directory (`edge serve`), routed by Host and path.
    Apps(PathBuf),
}

/// The set of tenants a process hosts. What it serves (its routing table and tenants) is one
/// [`Table`], read once per request and replaced whole by [`Node::reload`], so a request sees
/// either the old apps or the new ones, never a mix.
pub struct Node {
    current: ArcSwap<Table>,
    source: Source,
    options: NodeOptions,
    shared: Arc<TenantShared>,
    requests: Arc<crate::server::InFlight>,
    /// The node's bound on requests served at once.
    gate: crate::server::overload::Gate,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// How the bindings' triggers run handlers, once started ([`Node::attach_bindings`]).
    host: std::sync::OnceLock<Arc<dyn edge_binding::Host>>,
    /// Why the last reload could not serve a change, for the next request to show (`edge
    /// dev`, where errors are exposed).
    error_to_show: std::sync::Mutex<Option<crate::error::InvokeError>>,
    /// The last error of each app (by name, or by folder when its config names none) whose
    /// latest change did not load; cleared when a version of it loads.
    last_errors: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// Set once the node is stopping: its triggers stay detached.
    stopping: std::sync::atomic::AtomicBool,
}

impl Node {
    /// A node hosting the single app in `dir` (for `edge dev`).
    pub fn single(dir: &Path, options: NodeOptions) -> Result<Self, NodeError> {
        let app = AppConfig::load_env(dir, &options.bindings, options.env.as_deref())?;
        open_storage(&options, [&app])?;
        let shared = shared(&options)?;
        let tenant = new_tenant(app, &options, shared.clone())?;
        Ok(Self::new(
            Table::single(tenant, single_fingerprint(dir, &options)),
            Source::Single(dir.to_path_buf()),
            options,
            shared,
        ))
    }

    /// A node hosting every app folder (a subfolder with an `edge.toml`) in `dir`. Apps whose
    /// config is invalid, or that claim what another app has, are left out and returned with
    /// their errors; the rest are served.
    pub fn from_apps_dir(
        dir: &Path,
        options: NodeOptions,
    ) -> Result<(Self, Vec<ConfigError>), NodeError> {
        let apps = table::scan(dir, &options.bindings, options.env.as_deref())?;
        open_storage(&options, apps.iter().filter_map(|a| a.config.as_ref().ok()))?;
        let shared = shared(&options)?;
        let built = table::build(apps, None, &[], &options, &shared);
        let errors = built.errors;
        let node = Self::new(
            built.table,
            Source::Apps(dir.to_path_buf()),
            options,
            shared,
        );
        node.record_errors(&[], &[], &errors);
        Ok((node, errors))
    }

    fn new(table: Table, source: Source, options: NodeOptions, shared: Arc<TenantShared>) -> Self {
        let gate = crate::server::overload::Gate::new(options.front_door.max_requests, "the node");
        Self {
            current: ArcSwap::from_pointee(table),
            source,
            options,
            shared,
            requests: Default::default(),
            gate,
            reloading: tokio::sync::Mutex::new(()),
            host: std::sync::OnceLock::new(),
            error_to_show: std::sync::Mutex::new(None),
            last_errors: Default::default(),
            stopping: Default::default(),
        }
    }

    /// Begins stopping the node: its triggers stop starting work (cron stops firing; queue
    /// consumers take no new batch and finish the ones in flight) and stay stopped.
    pub fn stop_triggers(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.attach_table();
    }

    /// Retires every tenant: each isolate finishes what is in flight, its `waitUntil` work
    /// included, and stops ([`Node::isolates`] counts them down).
    pub fn retire_all(&self) {
        for tenant in self.tenants() {
            tenant.retire();
        }
    }

    /// The isolates running an app now.
    pub fn isolates(&self) -> &Arc<crate::server::InFlight> {
        &self.shared.isolates
    }

    /// The tenants served now, each with its version: a fingerprint of its folder's files
    /// (paths, sizes, modification times), in hex.
    pub fn versions(&self) -> Vec<(Arc<Tenant>, String)> {
        self.current
            .load()
            .served()
            .iter()
            .map(|s| (s.tenant.clone(), format!("{:016x}", s.fingerprint)))
            .collect()
    }

    /// The last error of each app whose latest change did not load (by app name, or by
    /// folder for a config that does not read), as the log said it.
    pub fn last_errors(&self) -> std::collections::BTreeMap<String, String> {
        self.last_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records what a reload (or the first load) could not serve, and forgets the errors of
    /// apps it served a new version of (or no longer serves).
    fn record_errors(
        &self,
        served: &[String],
        failed: &[(String, crate::isolate::LoadError)],
        config: &[ConfigError],
    ) {
        let mut errors = self.last_errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.retain(|key, _| !served.contains(key));
        for (name, e) in failed {
            errors.insert(name.clone(), e.to_string());
        }
        for e in config {
            errors.insert(e.folder().display().to_string(), e.to_string());
        }
    }

    /// Why the last reload could not serve a change, once: `edge dev` answers the next request
    /// with it (the version before the change serves the ones after). Always `None` on a node
    /// that does not expose errors.
    pub fn take_error_to_show(&self) -> Option<crate::error::InvokeError> {
        self.error_to_show
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// What the front door allows one request.
    pub fn front_door(&self) -> crate::server::FrontDoorLimits {
        self.options.front_door
    }

    /// The node's bound on requests served at once.
    pub fn gate(&self) -> &crate::server::overload::Gate {
        &self.gate
    }

    /// The requests the front door has in flight (a stopping node waits for them).
    pub fn requests(&self) -> &Arc<crate::server::InFlight> {
        &self.requests
    }

    /// The tenant serving `host` and `path`, if any, in what the node serves now.
    pub fn route(&self, host: &str, path: &str) -> Option<Arc<Tenant>> {
        self.current.load().route(host, path).cloned()
    }

    /// The tenants served now, in load order.
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.current
            .load()
            .served()
            .iter()
            .map(|s| s.tenant.clone())
            .collect()
    }

    /// The options the node runs with.
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// The bindings the node hosts, with their storage.
    pub fn bindings(&self) -> &Registry {
        &self.options.bindings
    }
}

/// Opens the storage of every binding `apps` declare (of every binding, on a node that keeps
/// storage open), so a store in use by another process stops the node at start.
fn open_storage<'a>(
    options: &NodeOptions,
    apps: impl IntoIterator<Item = &'a AppConfig>,
) -> Result<(), NodeError> {
    let registry = &options.bindings;
    let kinds: Vec<&'static str> = if options.open_storage {
        registry.kinds().collect()
    } else {
        let declared: Vec<&str> = apps
            .into_iter()
            .flat_map(|a| a.bindings.iter().map(|b| b.kind))
            .collect();
        registry.kinds().filter(|k| declared.contains(k)).collect()
    };
    for kind in kinds {
        registry
            .open([kind])
            .map_err(|source| NodeError::Store { kind, source })?;
    }
    Ok(())
}

fn new_tenant(
    mut app: AppConfig,
    options: &NodeOptions,
    shared: Arc<TenantShared>,
) -> Result<Arc<Tenant>, ConfigError> {
    if app.allow_private_network && !options.private_network.grants(&app.name) {
        let file = app.file.clone();
        tracing::warn!(
            tenant = %app.name,
            "{}: `outbound.allow_private` is not granted by the node (edge serve --allow-private-network {}); outbound fetch reaches public addresses only",
            file.display(),
            app.name
        );
        app.allow_private_network = false;
    }
    if app.asks_for_nodejs_compat() && !options.nodejs_compat.grants(&app.name) {
        tracing::warn!(
            tenant = %app.name,
            "{}: `nodejs_compat` is not granted by the node (edge serve --allow-nodejs-compat {}); imports of node:* fail",
            app.file.display(),
            app.name
        );
        app.nodejs_granted = false;
    }
    for warning in &app.warnings {
        tracing::warn!(tenant = %app.name, "{warning}");
    }
    let local = match &options.local_vars {
        Some(local) => local.load()?,
        None => Vec::new(),
    };
    for (key, value) in local.iter().chain(&options.vars) {
        app.vars
            .insert(key.clone(), serde_json::Value::String(value.clone()));
    }
    let (limits, lowered) = options.limits.resolve(&app.limits);
    for message in lowered {
        tracing::warn!(tenant = %app.name, "{}: {message}", app.file.display());
    }
    Tenant::new(app, limits, shared)
}

/// The fingerprint of `edge dev`'s app folder: its files, and its local secrets files (which
/// the folder's fingerprint leaves out, being hidden).
fn single_fingerprint(dir: &Path, options: &NodeOptions) -> u64 {
    let folder = fingerprint::of_folder(dir);
    match &options.local_vars {
        Some(local) => folder ^ local.fingerprint().rotate_left(1),
        None => folder,
    }
}

fn shared(options: &NodeOptions) -> Result<Arc<TenantShared>, NodeError> {
    let snapshot =
        crate::isolate::snapshot::load_or_create(options.cache_dir.as_deref(), &options.bindings)?;
    Ok(Arc::new(TenantShared {
        expose_errors: options.expose_errors,
        enforce_limits: options.enforce_limits,
        pool: (options.warm_isolates > 0).then(|| {
            crate::isolate::WarmPool::new(
                snapshot,
                options.bindings.clone(),
                options.limits.defaults.memory_bytes,
                options.warm_isolates,
            )
        }),
        wasm: crate::wasm::WasmEngine::new(crate::wasm::WasmSettings {
            cache_dir: options.cache_dir.clone(),
            instances: options.wasm_instances,
            max_memory_bytes: options.limits.ceilings.memory_bytes,
        }),
        ..TenantShared::new(snapshot, options.idle_timeout, options.bindings.clone())
    }))
}
