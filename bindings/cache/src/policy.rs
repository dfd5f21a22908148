//! Whether a response may be stored, for how long, and with which headers: HTTP caching as a
//! shared cache applies it (RFC 9111, as `http-cache-semantics` does for `wrangler dev`), with
//! Cloudflare's rules on top:
//!
//! - `Set-Cookie` responses are never stored, unless `Cache-Control: private=Set-Cookie` says
//!   to drop the cookie (then it is removed and the rest stored);
//! - `no-store`, `no-cache`, `private`, `proxy-revalidate` and statuses a cache does not
//!   understand are not stored; a request with `Authorization` only with `public`,
//!   `s-maxage` or `must-revalidate`;
//! - the lifetime is `s-maxage`, else `max-age`, else `Expires` − `Date`, less the response's
//!   `Age`; a response with none of them gets Cloudflare's default edge TTL for its status
//!   (200, 206, 301: 2 h; 302, 303: 20 min; 404, 410: 3 min; others are not stored), as on
//!   Workers in production (`wrangler dev` keeps such responses for no time at all).

use std::time::{Duration, SystemTime};

/// Statuses a cache understands (RFC 9111 §3, `http-cache-semantics`).
const UNDERSTOOD: &[u16] = &[
    200, 203, 204, 206, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];
/// Statuses cacheable without explicit freshness (RFC 9110 §15.1).
const CACHEABLE_BY_DEFAULT: &[u16] = &[200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];
/// Headers that describe one connection, never stored (RFC 9110 §7.6.1). Headers a
/// `Connection` header names are kept, as on Workers, whose cache never sees `Connection`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Cloudflare's default edge TTL for a status, for a response without explicit freshness.
fn default_ttl(status: u16) -> u64 {
    match status {
        200 | 206 | 301 => 2 * 60 * 60,
        302 | 303 => 20 * 60,
        404 | 410 => 3 * 60,
        _ => 0,
    }
}

/// The directives of a `Cache-Control` value: lower-cased names, values unquoted.
#[derive(Debug, Default)]
pub struct CacheControl(Vec<(String, Option<String>)>);

impl CacheControl {
    /// Parses every `Cache-Control` value of a message (joined by commas).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Vec::new();
        for value in values {
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let (name, arg) = match part.split_once('=') {
                    Some((n, v)) => (n, Some(v.trim().trim_matches('"').to_string())),
                    None => (part, None),
                };
                out.push((name.trim().to_ascii_lowercase(), arg));
            }
        }
        Self(out)
    }

    /// The directives of a message's `Cache-Control` headers.
    pub fn of(headers: &[(String, String)]) -> Self {
        Self::parse(
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
                .map(|(_, v)| v.as_str()),
        )
    }

    /// Where `private=Set-Cookie` is (Cloudflare's "store it without the cookie").
    fn private_set_cookie(&self) -> Option<usize> {
        self.0.iter().position(|(n, v)| {
            n == "private"
                && v.as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case("set-cookie"))
        })
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// `name`'s argument, if the directive is present with one (its first occurrence, the
    /// one [`CacheControl::has`] finds).
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `name`'s argument as seconds (a malformed one counts as 0).
    fn seconds(&self, name: &str) -> Option<u64> {
        self.has(name).then(|| {
            let arg = self.arg(name).unwrap_or("");
            let digits: &str = &arg[..arg.bytes().take_while(u8::is_ascii_digit).count()];
            digits
                .parse()
                .unwrap_or(if digits.is_empty() { 0 } else { u64::MAX })
        })
    }
}

/// A response the cache keeps: the headers to store and how long it stays fresh.
#[derive(Debug, PartialEq, Eq)]
pub struct Storable {
    /// The headers to store, without hop-by-hop ones (and without `Set-Cookie` when
    /// `private=Set-Cookie` asked for that), with a `Date`.
    pub headers: Vec<(String, String)>,
    /// Seconds it stays fresh from now.
    pub ttl: u64,
    /// The response's own `Age` when stored, in seconds.
    pub age: u64,
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// It sets a cookie.
    SetCookie,
    /// `no-store`, `private`, `no-cache` or `proxy-revalidate`.
    Directive,
    /// A status a cache does not store.
    Status,
    /// The request carried `Authorization` and the response did not allow storing it.
    Authorization,
    /// It is already stale (a lifetime of 0, or `Age` past it).
    Stale,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime).
pub fn http_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// Decides whether a response with `status` and `headers` to a request (which carried
/// `Authorization` if `authorized`) is stored at `now`, and how.
pub fn decide(
    status: u16,
    headers: &[(String, String)],
    authorized: bool,
    now: SystemTime,
) -> Result<Storable, NotStored> {
    let mut cc = CacheControl::of(headers);
    let drop_cookies = match cc.private_set_cookie() {
        Some(i) => {
            cc.0.remove(i);
            true
        }
        None => false,
    };
    if !drop_cookies && header(headers, "set-cookie").is_some() {
        return Err(NotStored::SetCookie);
    }
    if cc.has("no-store") || cc.has("private") || cc.has("no-cache") || cc.has("proxy-revalidate") {
        return Err(NotStored::Directive);
    }
    if !UNDERSTOOD.contains(&status) {
        return Err(NotStored::Status);
    }
    if authorized && !(cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate")) {
        return Err(NotStored::Authorization);
    }
    let expires = header(headers, "expires");
    let explicit = expires.is_some()
        || cc.has("max-age")
        || cc.has("s-maxage")
        || cc.has("public")
        || CACHEABLE_BY_DEFAULT.contains(&status);
    if !explicit {
        return Err(NotStored::Status);
    }
    let date = header(headers, "date").and_then(http_date);
    let lifetime = if let Some(s) = cc.seconds("s-maxage") {
        s
    } else if let Some(s) = cc.seconds("max-age") {
        s
    } else if let Some(expires) = expires {
        // An invalid Expires (such as "0") means already expired.
        let base = date.unwrap_or(now);
        http_date(expires)
            .and_then(|at| at.duration_since(base).ok())
            .map_or(0, |d| d.as_secs())
    } else {
        default_ttl(status)
    };
    let age = header(headers, "age")
        .and_then(|a| a.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let ttl = lifetime.saturating_sub(age);
    if ttl == 0 {
        return Err(NotStored::Stale);
    }
    Ok(Storable {
        headers: stored_headers(headers, drop_cookies, now),
        ttl,
        age,
    })
}

/// Decides how a response fetched with `cf.cacheTtl` or `cf.cacheTtlByStatus` is stored: for
/// `ttl` seconds whatever its caching headers say, as Cloudflare's "Edge Cache TTL" does — but
/// never with a cookie (unless `private=Set-Cookie` drops it), and not at all for a `ttl` of 0.
pub fn decide_forced(
    headers: &[(String, String)],
    ttl: u64,
    now: SystemTime,
) -> Result<Storable, NotStored> {
    let drop_cookies = CacheControl::of(headers).private_set_cookie().is_some();
    if !drop_cookies && header(headers, "set-cookie").is_some() {
        return Err(NotStored::SetCookie);
    }
    if ttl == 0 {
        return Err(NotStored::Stale);
    }
    Ok(Storable {
        headers: stored_headers(headers, drop_cookies, now),
        ttl,
        age: 0,
    })
}

/// The headers a cache stores of a response.
fn stored_headers(
    headers: &[(String, String)],
    drop_cookies: bool,
    now: SystemTime,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&n.as_str())
                && n != "age"
                && n != "content-length"
                && !(drop_cookies && n == "set-cookie")
        })
        .cloned()
        .collect();
    if header(&out, "date").is_none() {
        out.push(("date".into(), httpdate::fmt_http_date(now)));
    }
    // Without `private=Set-Cookie` itself: what was stored no longer sets a cookie.
    if drop_cookies {
        for (name, value) in out.iter_mut() {
            if name.eq_ignore_ascii_case("cache-control") {
                *value = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| {
                        !d.to_ascii_lowercase()
                            .replace(['"', ' '], "")
                            .eq("private=set-cookie")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
        out.retain(|(n, v)| !(n.eq_ignore_ascii_case("cache-control") && v.is_empty()));
    }
    out
}

/// Seconds from `earlier` to `later`, 0 if `later` is not after it.
pub fn seconds_between(earlier: SystemTime, later: SystemTime) -> u64 {
    later
        .duration_since(earlier)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> SystemTime {
        http_date("Sun, 06 Dec 2026 12:00:00 GMT").unwrap()
    }

    fn ttl(status: u16, pairs: &[(&str, &str)]) -> Result<u64, NotStored> {
        decide(status, &h(pairs), false, now()).map(|s| s.ttl)
    }

    #[test]
    fn lifetimes_in_order_of_precedence() {
        assert_eq!(ttl(200, &[("cache-control", "max-age=60")]), Ok(60));
        assert_eq!(
            ttl(200, &[("Cache-Control", "max-age=60, s-maxage=600")]),
            Ok(600)
        );
        assert_eq!(
            ttl(
                200,
                &[
                    ("cache-control", "max-age=60"),
                    ("expires", "Sun, 06 Dec 2026 13:00:00 GMT")
                ]
            ),
            Ok(60)
        );
        assert_eq!(
            ttl(
                200,
                &[
                    ("date", "Sun, 06 Dec 2026 12:00:00 GMT"),
                    ("expires", "Sun, 06 Dec 2026 13:00:00 GMT")
                ]
            ),
            Ok(3600)
        );
        assert_eq!(ttl(200, &[("expires", "0")]), Err(NotStored::Stale));
        assert_eq!(
            ttl(200, &[("cache-control", "max-age=0")]),
            Err(NotStored::Stale)
        );
        assert_eq!(
            ttl(200, &[("cache-control", "max-age=60"), ("age", "45")]),
            Ok(15)
        );
        assert_eq!(
            ttl(200, &[("cache-control", "max-age=60"), ("age", "60")]),
            Err(NotStored::Stale)
        );
        assert_eq!(ttl(200, &[("cache-control", "max-age=\"90\"")]), Ok(90));
    }

    #[test]
    fn cloudflares_default_ttls_without_explicit_freshness() {
        assert_eq!(ttl(200, &[]), Ok(7200));
        assert_eq!(ttl(301, &[]), Ok(7200));
        assert_eq!(ttl(404, &[]), Ok(180));
        assert_eq!(ttl(302, &[("cache-control", "public")]), Ok(1200));
        assert_eq!(ttl(302, &[]), Err(NotStored::Status));
        assert_eq!(
            ttl(500, &[("cache-control", "max-age=60")]),
            Err(NotStored::Status)
        );
        assert_eq!(ttl(204, &[]), Err(NotStored::Stale));
    }

    #[test]
    fn directives_and_cookies_that_forbid_storing() {
        for cc in [
            "no-store",
            "private",
            "no-cache",
            "max-age=60, private",
            "proxy-revalidate",
        ] {
            assert_eq!(
                ttl(200, &[("cache-control", cc)]),
                Err(NotStored::Directive),
                "{cc}"
            );
        }
        assert_eq!(
            ttl(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", "a=1")]
            ),
            Err(NotStored::SetCookie)
        );
        let kept = decide(
            200,
            &h(&[
                ("cache-control", "private=Set-Cookie, max-age=60"),
                ("set-cookie", "a=1"),
                ("x", "y"),
            ]),
            false,
            now(),
        )
        .unwrap();
        assert_eq!(kept.ttl, 60);
        assert!(kept.headers.iter().all(|(n, _)| n != "set-cookie"));
        assert!(
            kept.headers
                .contains(&("cache-control".into(), "max-age=60".into()))
        );
    }

    #[test]
    fn a_forced_ttl_overrides_the_headers_but_not_cookies() {
        let forced =
            |pairs: &[(&str, &str)], ttl| decide_forced(&h(pairs), ttl, now()).map(|s| s.ttl);
        assert_eq!(
            forced(&[("cache-control", "no-store, private")], 30),
            Ok(30)
        );
        assert_eq!(
            forced(&[("set-cookie", "a=1")], 30),
            Err(NotStored::SetCookie)
        );
        assert_eq!(forced(&[], 0), Err(NotStored::Stale));
    }

    #[test]
    fn authorization_needs_public_or_s_maxage() {
        let d = |cc: &str| decide(200, &h(&[("cache-control", cc)]), true, now()).map(|s| s.ttl);
        assert_eq!(d("max-age=60"), Err(NotStored::Authorization));
        assert_eq!(d("public, max-age=60"), Ok(60));
        assert_eq!(d("s-maxage=30"), Ok(30));
        assert_eq!(d("must-revalidate, max-age=5"), Ok(5));
    }

    #[test]
    fn stored_headers_drop_hop_by_hop_and_gain_a_date() {
        let s = decide(
            200,
            &h(&[
                ("cache-control", "max-age=60"),
                ("connection", "x-listed"),
                ("keep-alive", "5"),
                ("x-listed", "1"),
                ("transfer-encoding", "chunked"),
                ("content-length", "5"),
                ("etag", "\"v1\""),
            ]),
            false,
            now(),
        )
        .unwrap();
        let names: Vec<&str> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
        // Workers' cache never sees `Connection` (the runtime drops it), so what it names stays.
        assert_eq!(names, ["cache-control", "x-listed", "etag", "date"]);
        assert_eq!(s.headers[3].1, "Sun, 06 Dec 2026 12:00:00 GMT");
    }
}
