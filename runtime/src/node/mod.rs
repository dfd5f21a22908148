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
mod reload;
mod table;

use arc_swap::ArcSwap;

use crate::config::{AppConfig, ConfigError};
use crate::limits::NodeLimits;
use crate::router::RouteConflict;
use crate::tenant::{Tenant, TenantShared};

pub use reload::Reloaded;
use table::Table;

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
    /// Where KV data lives.
    pub kv: KvOptions,
    /// How many blank isolates to keep restored and waiting for an app (the warm pool), so a
    /// first request does not wait for a restore. 0: none; every isolate starts on demand.
    pub warm_isolates: usize,
    /// What the front door allows one request.
    pub front_door: crate::server::FrontDoorLimits,
    /// Which apps may have their `[outbound] allow_private` (reach loopback and private
    /// networks). An app cannot grant itself that: the operator does.
    pub private_network: AppGrant,
    /// KV namespace ids that more than one app may bind. Any other id belongs to the first app
    /// (in folder name order) that binds it.
    pub shared_kv: Vec<String>,
    /// Answer `/__scheduled?cron=…` by running the app's `scheduled` handler, as `wrangler dev
    /// --test-scheduled` does (`edge dev --test-scheduled`; never on a node).
    pub test_scheduled: bool,
    /// Apps whose routes may have a wildcard host (`*`, `*.example.com`, `*example.com`): a
    /// wildcard claims hosts no app has named, so only the operator hands one out. An app with
    /// one that is not granted is skipped.
    pub wildcard_routes: AppGrant,
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

/// Where a node keeps its KV namespaces.
#[derive(Clone, Debug, Default)]
pub struct KvOptions {
    /// The redb file. Without one, apps that bind KV namespaces cannot load.
    pub path: Option<PathBuf>,
    /// Open the store even when no app binds a namespace (so `edge kv` can reach it through
    /// the node). Otherwise it is opened only if an app needs it.
    pub always: bool,
    /// Measure expirations against this clock instead of the system's (tests).
    pub clock: Option<edge_kv::ManualClock>,
    /// Most bytes one namespace may store; `None` for no quota.
    pub namespace_quota: Option<u64>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            expose_errors: false,
            cache_dir: crate::isolate::snapshot::default_cache_dir(),
            limits: NodeLimits::default(),
            enforce_limits: true,
            kv: KvOptions::default(),
            warm_isolates: 0,
            front_door: Default::default(),
            private_network: AppGrant::default(),
            shared_kv: Vec::new(),
            wildcard_routes: AppGrant::default(),
            test_scheduled: false,
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
    /// The KV store could not be opened.
    #[error("cannot open the KV store: {0}{hint}", hint = if matches!(.0, edge_kv::OpenError::InUse { .. }) { " (another edge process is using this data directory: stop it, or give this one its own with --data-dir / --persist-to)" } else { "" })]
    Kv(#[from] edge_kv::OpenError),
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
    kv: Option<Arc<edge_kv::RedbBackend>>,
    requests: Arc<crate::server::InFlight>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Node {
    /// A node hosting the single app in `dir` (for `edge dev`).
    pub fn single(dir: &Path, options: NodeOptions) -> Result<Self, NodeError> {
        let app = AppConfig::load(dir)?;
        let kv = open_kv(&options.kv, !app.kv_namespaces.is_empty())?;
        let shared = shared(&options, kv.clone())?;
        let tenant = new_tenant(app, &options, shared.clone())?;
        Ok(Self::new(
            Table::single(tenant, fingerprint::of_folder(dir)),
            Source::Single(dir.to_path_buf()),
            options,
            shared,
            kv,
        ))
    }

    /// A node hosting every app folder (a subfolder with an `edge.toml`) in `dir`. Apps whose
    /// config is invalid, or that claim what another app has, are left out and returned with
    /// their errors; the rest are served.
    pub fn from_apps_dir(
        dir: &Path,
        options: NodeOptions,
    ) -> Result<(Self, Vec<ConfigError>), NodeError> {
        let apps = table::scan(dir)?;
        let needs_kv = apps
            .iter()
            .any(|a| a.config.as_ref().is_ok_and(|c| !c.kv_namespaces.is_empty()));
        let kv = open_kv(&options.kv, needs_kv)?;
        let shared = shared(&options, kv.clone())?;
        let built = table::build(apps, None, &[], &options, &shared);
        let errors = built.errors;
        let node = Self::new(
            built.table,
            Source::Apps(dir.to_path_buf()),
            options,
            shared,
            kv,
        );
        Ok((node, errors))
    }

    fn new(
        table: Table,
        source: Source,
        options: NodeOptions,
        shared: Arc<TenantShared>,
        kv: Option<Arc<edge_kv::RedbBackend>>,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(table),
            source,
            options,
            shared,
            kv,
            requests: Default::default(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// What the front door allows one request.
    pub fn front_door(&self) -> crate::server::FrontDoorLimits {
        self.options.front_door
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

    /// The node's KV store, if it opened one.
    pub fn kv(&self) -> Option<&Arc<edge_kv::RedbBackend>> {
        self.kv.as_ref()
    }
}

/// Opens the KV store if the node has a path for it and something needs it.
fn open_kv(
    options: &KvOptions,
    needed: bool,
) -> Result<Option<Arc<edge_kv::RedbBackend>>, NodeError> {
    let Some(path) = &options.path else {
        return Ok(None);
    };
    if !needed && !options.always {
        return Ok(None);
    }
    let mut redb = edge_kv::RedbOptions {
        namespace_quota: options.namespace_quota,
        ..Default::default()
    };
    if let Some(clock) = &options.clock {
        redb.clock = Arc::new(clock.clone());
    }
    let store = edge_kv::RedbBackend::open(path, redb)?;
    tracing::info!(path = %path.display(), "kv store open");
    Ok(Some(Arc::new(store)))
}

fn new_tenant(
    mut app: AppConfig,
    options: &NodeOptions,
    shared: Arc<TenantShared>,
) -> Result<Arc<Tenant>, ConfigError> {
    if app.allow_private_network && !options.private_network.grants(&app.name) {
        let file = app.root.join(crate::config::CONFIG_FILE);
        tracing::warn!(
            tenant = %app.name,
            "{}: `outbound.allow_private` is not granted by the node (edge serve --allow-private-network {}); outbound fetch reaches public addresses only",
            file.display(),
            app.name
        );
        app.allow_private_network = false;
    }
    let (limits, lowered) = options.limits.resolve(&app.limits);
    for message in lowered {
        let file = app.root.join(crate::config::CONFIG_FILE);
        tracing::warn!(tenant = %app.name, "{}: {message}", file.display());
    }
    Tenant::new(app, limits, shared)
}

fn shared(
    options: &NodeOptions,
    kv: Option<Arc<edge_kv::RedbBackend>>,
) -> Result<Arc<TenantShared>, NodeError> {
    let snapshot = crate::isolate::snapshot::load_or_create(options.cache_dir.as_deref())?;
    Ok(Arc::new(TenantShared {
        expose_errors: options.expose_errors,
        enforce_limits: options.enforce_limits,
        kv: kv.map(|s| s as Arc<dyn edge_kv::KvBackend>),
        pool: (options.warm_isolates > 0).then(|| {
            crate::isolate::WarmPool::new(
                snapshot,
                options.limits.defaults.memory_bytes,
                options.warm_isolates,
            )
        }),
        ..TenantShared::new(snapshot, options.idle_timeout)
    }))
}
