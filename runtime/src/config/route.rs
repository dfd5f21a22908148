//! Route patterns: `host/path*`, as in wrangler's `routes`.

/// Which hosts a route matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host (lower case, no port).
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com`.
    Subdomains(String),
    /// `*example.com`: `example.com` and any host ending in it.
    Suffix(String),
    /// `*`: every host.
    Any,
}

/// One route: a host pattern and a path that is either a prefix (`/api/*`) or exact (`/health`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    /// The hosts matched.
    pub host: HostPattern,
    /// The path, without the trailing `*` of a prefix.
    pub path: String,
    /// Whether `path` is a prefix (`*` at the end) rather than an exact path.
    pub prefix: bool,
}

impl RoutePattern {
    /// Parses `host/path`, `host/path*` or `*.host/path*`. A scheme (`https://`) is accepted and
    /// ignored; so is a port.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let rest = pattern
            .strip_prefix("https://")
            .or_else(|| pattern.strip_prefix("http://"))
            .unwrap_or(pattern);
        let Some(slash) = rest.find('/') else {
            return Err(format!(
                "{pattern:?} has no path: write it as host/path, e.g. \"example.com/*\""
            ));
        };
        let (host, path) = rest.split_at(slash);
        let host = host
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{pattern:?} has no host"));
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(rest) = host.strip_prefix("*.") {
            HostPattern::Subdomains(format!(".{rest}"))
        } else if let Some(rest) = host.strip_prefix('*') {
            HostPattern::Suffix(rest.to_string())
        } else {
            HostPattern::Exact(host)
        };
        if let HostPattern::Exact(h) | HostPattern::Subdomains(h) | HostPattern::Suffix(h) = &host
            && (h.contains('*') || h.trim_matches('.').is_empty())
        {
            return Err(format!(
                "{pattern:?}: `*` may appear only at the start of the host"
            ));
        }
        let (path, prefix) = match path.strip_suffix('*') {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        if path.contains('*') {
            return Err(format!(
                "{pattern:?}: `*` may appear only at the end of the path"
            ));
        }
        Ok(Self { host, path, prefix })
    }

    /// Whether this route serves `host` (lower case, no port) and `path`.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(s) => host.ends_with(s.as_str()),
            HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            HostPattern::Any => true,
        };
        host_ok
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }

    /// How specific the route is: an exact host over a wildcard, a longer wildcard over a
    /// shorter, then the longer path, then an exact path over a prefix.
    pub fn specificity(&self) -> (u8, usize, usize, bool) {
        let (host, host_len) = match &self.host {
            HostPattern::Exact(h) => (3, h.len()),
            HostPattern::Subdomains(s) => (2, s.len()),
            HostPattern::Suffix(s) => (1, s.len()),
            HostPattern::Any => (0, 0),
        };
        // The host first: a route for a host some app names exactly is never taken by another
        // app's wildcard, however long its path.
        (host, host_len, self.path.len(), !self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let r = RoutePattern::parse("Alpha.test/*").unwrap();
        assert!(r.matches("alpha.test", "/"));
        assert!(r.matches("alpha.test", "/x/y"));
        assert!(!r.matches("beta.test", "/"));

        let r = RoutePattern::parse("https://example.com:8443/api/*").unwrap();
        assert!(r.matches("example.com", "/api/v1"));
        assert!(!r.matches("example.com", "/other"));

        let r = RoutePattern::parse("*.example.com/*").unwrap();
        assert!(r.matches("a.example.com", "/"));
        assert!(!r.matches("example.com", "/"));

        let r = RoutePattern::parse("*example.com/*").unwrap();
        assert!(r.matches("example.com", "/"));

        let r = RoutePattern::parse("example.com/health").unwrap();
        assert!(r.matches("example.com", "/health"));
        assert!(!r.matches("example.com", "/health/x"));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(RoutePattern::parse("example.com").is_err());
        assert!(RoutePattern::parse("/x").is_err());
        assert!(RoutePattern::parse("ex*ample.com/*").is_err());
        assert!(RoutePattern::parse("example.com/a*b").is_err());
    }
}
