//! The host a request is for, checked once: routing and the URL the script sees are both made
//! from it, so they cannot disagree.

use http::header::HOST;

/// The request's authority, `host[:port]`: from its Host header, or from its target where it
/// has none (HTTP/2's `:authority`, an absolute-form HTTP/1 target). Refused, with the reason,
/// when there is more than one Host header, when the header and the target name different
/// authorities, or when the value is anything but a host name or IP literal and an optional
/// port (no user info, path, query or stray characters).
pub(crate) fn of(parts: &http::request::Parts) -> Result<&str, &'static str> {
    let mut headers = parts.headers.get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err("the request has more than one Host header");
    }
    let header = match header {
        Some(value) => Some(value.to_str().map_err(|_| "the Host header is not ASCII")?),
        None => None,
    };
    let target = parts.uri.authority().map(|a| a.as_str());
    let authority = match (header, target) {
        (Some(h), Some(t)) if !h.eq_ignore_ascii_case(t) => {
            return Err("the Host header and the request target name different hosts");
        }
        (Some(h), _) => h,
        (None, Some(t)) => t,
        (None, None) => return Err("the request has no Host header"),
    };
    if !is_host_and_port(authority) {
        return Err("the Host header is not a host name with an optional port");
    }
    Ok(authority)
}

/// `host[:port]`, where host is a DNS name (letters, digits, `-`, `.`, `_`) or an IP literal
/// (IPv6 in brackets) and port is 1 to 5 digits up to 65535.
fn is_host_and_port(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&str]) -> http::request::Parts {
        let mut req = http::Request::builder().uri(uri);
        for h in hosts {
            req = req.header(HOST, *h);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_and_port_are_accepted() {
        for h in [
            "a.test",
            "A.Test:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:80",
            "x_y.localhost",
        ] {
            assert_eq!(of(&parts("/", &[h])), Ok(h), "{h}");
        }
        assert_eq!(of(&parts("http://a.test/x", &[])), Ok("a.test"));
        assert_eq!(of(&parts("http://a.test/x", &["A.TEST"])), Ok("A.TEST"));
    }

    #[test]
    fn anything_else_is_refused() {
        for h in [
            "a.test:1@evil.example",
            "a.test:80/url?",
            "a.test/",
            "a.test:",
            "a.test:99999",
            "a test",
            "",
            "[::1",
            "[nothost]",
            "a.test#x",
        ] {
            assert!(of(&parts("/", &[h])).is_err(), "{h:?} was accepted");
        }
        assert!(of(&parts("/", &["a.test", "a.test"])).is_err());
        assert!(of(&parts("http://b.test/", &["a.test"])).is_err());
        assert!(of(&parts("/", &[])).is_err());
    }
}
