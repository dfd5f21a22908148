//! Which tenant serves a request: by Host (port ignored), then the most specific route.

use std::sync::Arc;

use crate::config::{HostPattern, RoutePattern};
use crate::tenant::Tenant;

/// Two apps claim the same route.
#[derive(Debug, thiserror::Error)]
#[error("route {pattern:?} is claimed by both {first:?} and {second:?}")]
pub struct RouteConflict {
    /// The route, as written.
    pub pattern: String,
    /// The app that claimed it first.
    pub first: String,
    /// The app that claimed it again.
    pub second: String,
}

/// The routing table of a node.
#[derive(Default)]
pub struct Router {
    /// Looked up once per request; the keys come from the node's config, never from clients.
    exact: rustc_hash::FxHashMap<String, Vec<(RoutePattern, Arc<Tenant>)>>,
    wildcard: Vec<(RoutePattern, Arc<Tenant>)>,
}

impl Router {
    /// Adds `tenant` under `route`.
    pub fn add(&mut self, route: RoutePattern, tenant: Arc<Tenant>) -> Result<(), RouteConflict> {
        let list = match &route.host {
            HostPattern::Exact(h) => self.exact.entry(h.clone()).or_default(),
            _ => &mut self.wildcard,
        };
        if let Some((_, other)) = list.iter().find(|(r, _)| *r == route) {
            return Err(RouteConflict {
                pattern: describe(&route),
                first: other.name().to_string(),
                second: tenant.name().to_string(),
            });
        }
        list.push((route, tenant));
        Ok(())
    }

    /// The app that already has exactly `route`, if one does.
    pub fn claimed_by(&self, route: &RoutePattern) -> Option<&str> {
        let list = match &route.host {
            HostPattern::Exact(h) => self.exact.get(h)?,
            _ => &self.wildcard,
        };
        list.iter().find(|(r, _)| r == route).map(|(_, t)| t.name())
    }

    /// The tenant for `host` (any case, port allowed) and `path`, if one is routed.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Tenant>> {
        let host = strip_port(host).to_ascii_lowercase();
        self.exact
            .get(&host)
            .into_iter()
            .flatten()
            .chain(self.wildcard.iter())
            .filter(|(r, _)| r.matches(&host, path))
            .max_by_key(|(r, _)| r.specificity())
            .map(|(_, t)| t)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// A route as written in `edge.toml`, for messages.
pub(crate) fn describe(r: &RoutePattern) -> String {
    let host = match &r.host {
        HostPattern::Exact(h) => h.clone(),
        HostPattern::Subdomains(s) => format!("*{s}"),
        HostPattern::Suffix(s) => format!("*{s}"),
        HostPattern::Any => "*".into(),
    };
    format!("{host}{}{}", r.path, if r.prefix { "*" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantShared;

    fn tenant(name: &str) -> Arc<Tenant> {
        let dir = std::env::temp_dir().join(format!("edge-router-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("i.js"), "").unwrap();
        let cfg = crate::config::AppConfig::parse(
            &dir,
            &dir.join("edge.toml"),
            &format!("name = \"{name}\"\nmain = \"i.js\""),
            &Default::default(),
        )
        .unwrap();
        Tenant::new(
            cfg,
            crate::limits::Limits::default(),
            Arc::new(TenantShared::new(
                &[],
                std::time::Duration::from_secs(1),
                Default::default(),
            )),
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_port_is_ignored() {
        let mut r = Router::default();
        let (a, b, c) = (tenant("a"), tenant("b"), tenant("c"));
        r.add(RoutePattern::parse("example.com/*").unwrap(), a)
            .unwrap();
        r.add(RoutePattern::parse("example.com/api/*").unwrap(), b)
            .unwrap();
        r.add(RoutePattern::parse("*.example.com/*").unwrap(), c)
            .unwrap();
        assert_eq!(r.route("example.com:8080", "/x").unwrap().name(), "a");
        assert_eq!(r.route("EXAMPLE.com", "/api/v1").unwrap().name(), "b");
        assert_eq!(r.route("x.example.com", "/api").unwrap().name(), "c");
        assert!(r.route("other.test", "/").is_none());
    }

    #[test]
    fn duplicate_routes_conflict() {
        let mut r = Router::default();
        r.add(RoutePattern::parse("a.test/*").unwrap(), tenant("x"))
            .unwrap();
        let e = r
            .add(RoutePattern::parse("a.test/*").unwrap(), tenant("y"))
            .unwrap_err();
        assert!(e.to_string().contains("\"x\"") && e.to_string().contains("\"y\""));
    }
}
