//! A node: the tenants it hosts and how requests find them.
//!
//! `edge serve` hosts every app folder of an apps directory and routes by Host and path;
//! `edge dev` hosts one app and sends it every request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AppConfig, CONFIG_FILE, ConfigError, HostPattern, RoutePattern};
use crate::limits::NodeLimits;
use crate::router::{RouteConflict, Router};
use crate::tenant::{Tenant, TenantShared};

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

enum Routing {
    /// Every request goes to this tenant.
    Single(Arc<Tenant>),
    /// By Host and path.
    Table(Router),
}

/// The set of tenants a process hosts.
pub struct Node {
    routing: Routing,
    tenants: Vec<Arc<Tenant>>,
    options: NodeOptions,
    kv: Option<Arc<edge_kv::RedbBackend>>,
    requests: Arc<crate::server::InFlight>,
}

impl Node {
    /// A node hosting the single app in `dir` (for `edge dev`).
    pub fn single(dir: &Path, options: NodeOptions) -> Result<Self, NodeError> {
        let app = AppConfig::load(dir)?;
        let kv = open_kv(&options.kv, !app.kv_namespaces.is_empty())?;
        let shared = shared(&options, kv.clone())?;
        let tenant = new_tenant(app, &options, shared)?;
        Ok(Self {
            routing: Routing::Single(tenant.clone()),
            tenants: vec![tenant],
            options,
            kv,
            requests: Default::default(),
        })
    }

    /// A node hosting every app folder (a subfolder with an `edge.toml`) in `dir`. Apps whose
    /// config is invalid are left out and returned with their errors; the rest are served.
    pub fn from_apps_dir(
        dir: &Path,
        options: NodeOptions,
    ) -> Result<(Self, Vec<ConfigError>), NodeError> {
        let entries = std::fs::read_dir(dir).map_err(|source| NodeError::AppsDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut folders: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(CONFIG_FILE).is_file())
            .collect();
        folders.sort();

        let mut apps = Vec::new();
        let mut errors = Vec::new();
        for folder in folders {
            match AppConfig::load(&folder) {
                Ok(app) => apps.push((folder, app)),
                Err(e) => errors.push(e),
            }
        }
        let needs_kv = apps.iter().any(|(_, app)| !app.kv_namespaces.is_empty());
        let kv = open_kv(&options.kv, needs_kv)?;
        let shared = shared(&options, kv.clone())?;
        let mut router = Router::default();
        let mut tenants: Vec<Arc<Tenant>> = Vec::new();
        let mut kv_owners: std::collections::HashMap<String, String> = Default::default();
        for (folder, app) in apps {
            // An app that claims a name or a route another app already has is skipped, with an
            // error naming both; the rest of the node starts.
            let config = folder.join(CONFIG_FILE);
            if let Some(other) = tenants.iter().find(|t| t.name() == app.name) {
                errors.push(ConfigError::Invalid {
                    path: config,
                    key: "name".into(),
                    reason: format!(
                        "{:?} is already the name of the app in {}",
                        app.name,
                        other.app().root.display()
                    ),
                });
                continue;
            }
            if let Some(route) = app
                .routes
                .iter()
                .find(|r| !matches!(r.host, HostPattern::Exact(_)))
                .filter(|_| !options.wildcard_routes.grants(&app.name))
            {
                errors.push(ConfigError::Invalid {
                    path: config,
                    key: "routes".into(),
                    reason: format!(
                        "{} has a wildcard host, which claims hosts no app has named: the node grants that only to apps its operator names (edge serve --allow-wildcard-routes {})",
                        crate::router::describe(route),
                        app.name
                    ),
                });
                continue;
            }
            let mut routes = app.routes.clone();
            // Every app is also reachable at `<name>.localhost`, handy with curl and in tests.
            match RoutePattern::parse(&format!("{}.localhost/*", app.name.to_ascii_lowercase())) {
                Ok(route) => routes.push(route),
                Err(reason) => {
                    errors.push(ConfigError::Invalid {
                        path: config,
                        key: "name".into(),
                        reason: format!("not usable as a host name: {reason}"),
                    });
                    continue;
                }
            }
            if let Some((route, other)) = routes
                .iter()
                .find_map(|r| router.claimed_by(r).map(|other| (r, other)))
            {
                errors.push(ConfigError::Invalid {
                    path: config,
                    key: "routes".into(),
                    reason: format!(
                        "{} is already routed to app {other:?}",
                        crate::router::describe(route)
                    ),
                });
                continue;
            }
            // A KV namespace belongs to the first app that binds it; another app may bind it
            // only if the operator shares it.
            if let Some((id, other)) = app.kv_namespaces.iter().find_map(|ns| {
                kv_owners
                    .get(&ns.id)
                    .filter(|owner| **owner != app.name && !options.shared_kv.contains(&ns.id))
                    .map(|owner| (ns.id.clone(), owner.clone()))
            }) {
                errors.push(ConfigError::Invalid {
                    path: config,
                    key: "kv_namespaces".into(),
                    reason: format!(
                        "namespace {id:?} belongs to app {other:?}; a node lets apps share a namespace only when its operator says so (edge serve --share-kv {id})"
                    ),
                });
                continue;
            }
            let ids: Vec<String> = app.kv_namespaces.iter().map(|ns| ns.id.clone()).collect();
            let tenant = match new_tenant(app, &options, shared.clone()) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for id in ids {
                kv_owners
                    .entry(id)
                    .or_insert_with(|| tenant.name().to_string());
            }
            for route in routes {
                router.add(route, tenant.clone())?;
            }
            tenants.push(tenant);
        }
        Ok((
            Self {
                routing: Routing::Table(router),
                tenants,
                options,
                kv,
                requests: Default::default(),
            },
            errors,
        ))
    }

    /// What the front door allows one request.
    pub fn front_door(&self) -> crate::server::FrontDoorLimits {
        self.options.front_door
    }

    /// The requests the front door has in flight (a stopping node waits for them).
    pub fn requests(&self) -> &Arc<crate::server::InFlight> {
        &self.requests
    }

    /// The tenant serving `host` and `path`, if any.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Tenant>> {
        match &self.routing {
            Routing::Single(t) => Some(t),
            Routing::Table(r) => r.route(host, path),
        }
    }

    /// The tenants, in load order.
    pub fn tenants(&self) -> &[Arc<Tenant>] {
        &self.tenants
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
