//! Who a tenant may reach with outbound `fetch`.
//!
//! Public hosts are allowed. Loopback, private (RFC 1918, unique-local), link-local,
//! carrier-grade NAT, unspecified, multicast and documentation addresses are denied unless the
//! app's config allows private networks. The rule is enforced three times, so no path around
//! it is left open:
//!
//! 1. deno_fetch's permission check denies IPv4 literals in those ranges and `localhost`
//!    before anything is sent (the error names the host);
//! 2. a request hook denies IPv6 literals in those ranges (deno's deny list cannot express
//!    IPv6 subnets);
//! 3. the DNS resolver drops non-public addresses from every answer, so a public name that
//!    resolves to `127.0.0.1` or `169.254.169.254` (DNS rebinding) cannot be reached either,
//!    and the connection goes only to the addresses that were checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use deno_error::JsErrorBox;
use deno_fetch::dns::{Resolve, Resolver, Resolving};
use deno_permissions::{
    Permissions, PermissionsContainer, PermissionsOptions, RuntimePermissionDescriptorParser,
};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

/// IPv4 ranges and names the permission check denies up front.
const DENIED_LITERALS: &[&str] = &[
    "localhost",
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "[::1]",
    "[::]",
];

/// The outbound-network policy of one isolate.
#[derive(Clone, Debug, Default)]
pub struct NetPolicy {
    /// Allow loopback and private ranges too (for local development against local services).
    pub allow_private: bool,
}

/// A net policy that could not be turned into a permission set.
#[derive(Debug, thiserror::Error)]
#[error("invalid outbound network policy: {0}")]
pub struct NetPolicyError(String);

/// A permission container that allows no outbound request: what an isolate holds until its
/// app's policy is applied.
pub(crate) fn no_network() -> PermissionsContainer {
    let parser = RuntimePermissionDescriptorParser::new(sys_traits::impls::RealSys);
    PermissionsContainer::new(Arc::new(parser), Permissions::none_without_prompt())
}

impl NetPolicy {
    /// The permission container deno_fetch checks every outbound request against.
    pub fn permissions(&self) -> Result<PermissionsContainer, NetPolicyError> {
        let parser = RuntimePermissionDescriptorParser::new(sys_traits::impls::RealSys);
        let deny_net =
            (!self.allow_private).then(|| DENIED_LITERALS.iter().map(|s| s.to_string()).collect());
        let options = PermissionsOptions {
            allow_net: Some(vec![]),
            deny_net,
            prompt: false,
            ..Default::default()
        };
        let permissions = Permissions::from_options(&parser, &options)
            .map_err(|e| NetPolicyError(e.to_string()))?;
        Ok(PermissionsContainer::new(Arc::new(parser), permissions))
    }

    /// Applies the policy's request hook and resolver to deno_fetch's options.
    pub fn apply(&self, options: &mut deno_fetch::Options) {
        if !self.allow_private {
            options.request_builder_hook = Some(deny_private_ip_literals);
            options.resolver = Resolver::custom(Arc::new(PublicOnlyResolver::default()));
        }
    }
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link local fe80::/10
                || (seg0 & 0xffc0) == 0xfec0 // site local fec0::/10
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible, deprecated
                || (seg0 == 0x0064 && v6.segments()[1] == 0xff9b && !is_public_v4(nat64(v6))))
        }
    }
}

fn nat64(v6: Ipv6Addr) -> Ipv4Addr {
    let s = v6.segments();
    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn deny_private_ip_literals(
    req: &mut http::Request<deno_fetch::ReqBody>,
) -> Result<(), JsErrorBox> {
    let host = req.uri().host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Err(JsErrorBox::new(
            "NotCapable",
            format!(
                "fetch to {host} is not allowed: private and loopback addresses are blocked (set [outbound] allow_private = true in edge.toml to allow them)"
            ),
        )),
        _ => Ok(()),
    }
}

/// Resolves with the system resolver and keeps only public addresses.
#[derive(Clone, Debug)]
struct PublicOnlyResolver {
    inner: GaiResolver,
}

impl Default for PublicOnlyResolver {
    fn default() -> Self {
        Self {
            inner: GaiResolver::new(),
        }
    }
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = inner
                .call(name)
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves only to private or loopback addresses, which apps may not reach"
                    ),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &NetPolicy, url: &str) -> bool {
        let url = deno_core::url::Url::parse(url).unwrap();
        policy
            .permissions()
            .unwrap()
            .check_net_url(&url, "fetch()")
            .is_ok()
    }

    #[test]
    fn public_hosts_are_allowed() {
        let p = NetPolicy::default();
        assert!(check(&p, "https://example.com/"));
        assert!(check(&p, "http://93.184.216.34:8080/x"));
    }

    #[test]
    fn private_ranges_are_denied_by_default() {
        let p = NetPolicy::default();
        for url in [
            "http://127.0.0.1:8787/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.20.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
        ] {
            assert!(!check(&p, url), "{url} should be denied");
        }
    }

    #[test]
    fn private_ranges_can_be_allowed() {
        let p = NetPolicy {
            allow_private: true,
        };
        assert!(check(&p, "http://127.0.0.1:8787/"));
    }

    #[test]
    fn classifies_addresses() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
