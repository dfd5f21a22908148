//! What a node serves at one moment: its tenants and the routing table to them, built from the
//! apps read from disk, with every claim an app's own config makes checked against the others
//! and against the operator's grants.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{NodeError, NodeOptions, fingerprint, new_tenant};
use edge_binding::Registry;

use crate::config::{AppConfig, ConfigError, HostPattern, RoutePattern};
use crate::router::Router;
use crate::tenant::{Tenant, TenantShared};

/// The tenants a node serves and how requests find them.
pub(super) struct Table {
    routing: Routing,
    tenants: Vec<Served>,
}

enum Routing {
    /// Every request goes to this tenant (`edge dev`).
    Single(Arc<Tenant>),
    /// By Host and path (`edge serve`).
    Routes(Router),
}

/// A tenant in a table, with the fingerprint of the app folder it was made from.
#[derive(Clone)]
pub(super) struct Served {
    pub(super) tenant: Arc<Tenant>,
    pub(super) fingerprint: u64,
}

impl Table {
    /// A table of one tenant that takes every request.
    pub(super) fn single(tenant: Arc<Tenant>, fingerprint: u64) -> Self {
        Self {
            routing: Routing::Single(tenant.clone()),
            tenants: vec![Served {
                tenant,
                fingerprint,
            }],
        }
    }

    /// The tenant for `host` and `path`, if any.
    pub(super) fn route(&self, host: &str, path: &str) -> Option<&Arc<Tenant>> {
        match &self.routing {
            Routing::Single(t) => Some(t),
            Routing::Routes(r) => r.route(host, path),
        }
    }

    /// The tenants, in load order.
    pub(super) fn served(&self) -> &[Served] {
        &self.tenants
    }

    /// The one served from `folder`, if any.
    pub(super) fn serving_folder(&self, folder: &Path) -> Option<&Served> {
        self.tenants.iter().find(|s| s.tenant.app().root == folder)
    }
}

/// Which app has each binding resource claimed so far: (kind, resource) → app name.
type Owners = std::collections::HashMap<(&'static str, String), String>;

/// An app folder as read from disk.
pub(super) struct Scanned {
    pub(super) folder: PathBuf,
    /// Its `edge.toml`, or why it could not be read.
    pub(super) config: Result<AppConfig, ConfigError>,
    pub(super) fingerprint: u64,
}

/// Reads every app folder (a subfolder with an `edge.toml`) of `dir`, in name order.
pub(super) fn scan(
    dir: &Path,
    registry: &Registry,
    env: Option<&str>,
) -> Result<Vec<Scanned>, NodeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| NodeError::AppsDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| crate::config::config_file(p).is_some())
        .collect();
    folders.sort();
    Ok(folders
        .into_iter()
        .map(|folder| Scanned {
            fingerprint: fingerprint::of_folder(&folder),
            config: AppConfig::load_env(&folder, registry, env),
            folder,
        })
        .collect())
}

/// A table, and the apps left out of it with why.
pub(super) struct Built {
    pub(super) table: Table,
    pub(super) errors: Vec<ConfigError>,
}

/// One app to place in a table.
enum Candidate {
    /// Read from disk: a tenant is made for it unless `previous` serves it unchanged.
    Read {
        config: Box<AppConfig>,
        fingerprint: u64,
    },
    /// Its folder could not be read this time, but `previous` serves it: kept as it was.
    Kept(Served),
}

impl Candidate {
    fn config(&self) -> &AppConfig {
        match self {
            Self::Read { config, .. } => config,
            Self::Kept(s) => s.tenant.app(),
        }
    }
}

/// Builds the table for `apps`, in order (the folders in `keep` keep what `previous` serves
/// from them). An app whose name, routes or binding resources (a KV
/// namespace, …) another app earlier in the order already has, or that asks for what the operator has not granted,
/// is left out with an error; the rest are served. With `previous` (a reload), an app whose
/// folder is unchanged keeps its tenant (and its warm isolate), and one whose `edge.toml` no
/// longer reads keeps its old version rather than going away.
pub(super) fn build(
    apps: Vec<Scanned>,
    previous: Option<&Table>,
    keep: &[PathBuf],
    options: &NodeOptions,
    shared: &Arc<TenantShared>,
) -> Built {
    let mut errors = Vec::new();
    let mut candidates = Vec::new();
    for app in apps {
        // A new version that failed to load: the one already serving stays.
        if keep.contains(&app.folder)
            && let Some(kept) = previous.and_then(|p| p.serving_folder(&app.folder))
        {
            candidates.push(Candidate::Kept(kept.clone()));
            continue;
        }
        match app.config {
            Ok(config) => candidates.push(Candidate::Read {
                config: Box::new(config),
                fingerprint: app.fingerprint,
            }),
            Err(e) => {
                if let Some(kept) = previous.and_then(|p| p.serving_folder(&app.folder)) {
                    tracing::warn!(
                        tenant = kept.tenant.name(),
                        "{e}; the version already loaded keeps serving"
                    );
                    candidates.push(Candidate::Kept(kept.clone()));
                }
                errors.push(e);
            }
        }
    }
    let mut router = Router::default();
    let mut tenants: Vec<Served> = Vec::new();
    // What an app served now claims stays its own across a reload, whatever folder order says
    // (an app added later cannot take it), as long as the app still claims it.
    let mut owners = Owners::default();
    if let Some(previous) = previous {
        for served in previous.served() {
            let name = served.tenant.name();
            let Some(now) = candidates.iter().find(|c| c.config().name == name) else {
                continue;
            };
            for b in &served.tenant.app().bindings {
                let Some(claim) = b.claim.as_ref().filter(|c| !c.shared) else {
                    continue;
                };
                let still = now.config().bindings.iter().any(|nb| {
                    nb.kind == b.kind
                        && nb
                            .claim
                            .as_ref()
                            .is_some_and(|c| c.resource == claim.resource)
                });
                if still {
                    owners.insert((b.kind, claim.resource.clone()), name.to_string());
                }
            }
        }
    }
    for candidate in candidates {
        let config = candidate.config();
        let routes = match claims(config, &router, &tenants, &owners, options) {
            Ok(routes) => routes,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let served = match candidate {
            Candidate::Kept(kept) => kept,
            Candidate::Read {
                config,
                fingerprint,
            } => match previous
                .and_then(|p| p.serving_folder(&config.root))
                .filter(|s| s.fingerprint == fingerprint)
            {
                Some(unchanged) => unchanged.clone(),
                None => match new_tenant(*config, options, shared.clone()) {
                    Ok(tenant) => Served {
                        tenant,
                        fingerprint,
                    },
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
            },
        };
        for b in &served.tenant.app().bindings {
            if let Some(claim) = &b.claim {
                owners
                    .entry((b.kind, claim.resource.clone()))
                    .or_insert_with(|| served.tenant.name().to_string());
            }
        }
        for route in routes {
            // `claims` checked each route against the table: no conflict is left.
            if let Err(e) = router.add(route, served.tenant.clone()) {
                tracing::error!("{e}");
            }
        }
        tenants.push(served);
    }
    Built {
        table: Table {
            routing: Routing::Routes(router),
            tenants,
        },
        errors,
    }
}

/// What `app` may claim in a table that already holds `router` and `tenants`: its routes (plus
/// `<name>.localhost`), or why it is left out.
fn claims(
    app: &AppConfig,
    router: &Router,
    tenants: &[Served],
    owners: &Owners,
    options: &NodeOptions,
) -> Result<Vec<RoutePattern>, ConfigError> {
    let config = app.file.clone();
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        path: config.clone(),
        key: key.into(),
        reason,
    };
    if let Some(other) = tenants.iter().find(|s| s.tenant.name() == app.name) {
        return Err(invalid(
            "name",
            format!(
                "{:?} is already the name of the app in {}",
                app.name,
                other.tenant.app().root.display()
            ),
        ));
    }
    if let Some(route) = app
        .routes
        .iter()
        .find(|r| !matches!(r.host, HostPattern::Exact(_)))
        .filter(|_| !options.wildcard_routes.grants(&app.name))
    {
        return Err(invalid(
            "routes",
            format!(
                "{} has a wildcard host, which claims hosts no app has named: the node grants that only to apps its operator names (edge serve --allow-wildcard-routes {})",
                crate::router::describe(route),
                app.name
            ),
        ));
    }
    let mut routes = app.routes.clone();
    // Every app is also reachable at `<name>.localhost`, handy with curl and in tests.
    let local = RoutePattern::parse(&format!("{}.localhost/*", app.name.to_ascii_lowercase()))
        .map_err(|reason| invalid("name", format!("not usable as a host name: {reason}")))?;
    routes.push(local);
    if let Some((route, other)) = routes
        .iter()
        .find_map(|r| router.claimed_by(r).map(|other| (r, other)))
    {
        return Err(invalid(
            "routes",
            format!(
                "{} is already routed to app {other:?}",
                crate::router::describe(route)
            ),
        ));
    }
    // A binding's resource (a KV namespace, …) belongs to the first app that claims it;
    // another app may claim it only if the operator shares it.
    if let Some((b, claim, owner)) = app.bindings.iter().find_map(|b| {
        let claim = b.claim.as_ref().filter(|c| !c.shared)?;
        owners
            .get(&(b.kind, claim.resource.clone()))
            .filter(|owner| **owner != app.name)
            .map(|owner| (b, claim, owner))
    }) {
        let registry = &options.bindings;
        return Err(invalid(
            registry.config_key(b.kind).unwrap_or(b.kind),
            registry.claimed(b.kind, &claim.resource, owner),
        ));
    }
    Ok(routes)
}
