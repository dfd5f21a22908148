//! What `match` answers for a stored entry and the request's conditions, as Workers' cache
//! does, in RFC 9110's order: `304` for a matching `If-None-Match` (weak comparison; `*`
//! matches any entry), or, without `If-None-Match`, for a `Last-Modified` not after
//! `If-Modified-Since`; then, for a stored `200`, `206` for `Range` (one part with
//! `Content-Range`, several as `multipart/byteranges`) unless an `If-Range` names another
//! version, `416` for a range the body cannot satisfy; else the whole entry. Every answer
//! carries `cf-cache-status: HIT` and the entry's current `Age`.

use crate::backend::Entry;
use crate::policy::http_date;
use crate::range::{self, Ranges};

/// The request headers `match` looks at.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    /// `Range`.
    pub range: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<String>,
    /// `If-Range`.
    pub if_range: Option<String>,
}

/// A `match` answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Status text.
    pub status_text: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body; `None` for none (304, 416).
    pub body: Option<Vec<u8>>,
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value));
}

/// The standard reason phrase of `status` (`""` for one without).
fn reason(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
        .to_string()
}

/// An entity tag without quotes and weakness (`W/"x"` and `"x"` are both `x`).
fn etag(value: &str) -> Option<&str> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.strip_prefix('"')?
        .strip_suffix('"')
        .filter(|t| !t.is_empty())
}

fn not_modified(entry: &Entry, conditions: &Conditions) -> bool {
    if let Some(wanted) = conditions.if_none_match.as_deref() {
        // With If-None-Match, If-Modified-Since is not looked at (RFC 9110 13.2.2).
        let have = get(&entry.headers, "etag").and_then(etag);
        return wanted.trim() == "*"
            || have.is_some_and(|have| wanted.split(',').any(|w| etag(w) == Some(have)));
    }
    if let (Some(since), Some(modified)) = (
        conditions.if_modified_since.as_deref().and_then(http_date),
        get(&entry.headers, "last-modified").and_then(http_date),
    ) {
        return modified <= since;
    }
    false
}

/// Whether the entry is the version an `If-Range` names (a strong entity tag, or the exact
/// `Last-Modified` date); a request without one always is.
fn range_applies(entry: &Entry, conditions: &Conditions) -> bool {
    let Some(validator) = conditions.if_range.as_deref().map(str::trim) else {
        return true;
    };
    if validator.starts_with('"') || validator.starts_with("W/") {
        let stored = get(&entry.headers, "etag").map(str::trim);
        return !validator.starts_with("W/") && stored == Some(validator);
    }
    match (
        http_date(validator),
        get(&entry.headers, "last-modified").and_then(http_date),
    ) {
        (Some(asked), Some(modified)) => asked == modified,
        _ => false,
    }
}

/// The answer for `entry` at `now` (ms since the epoch). `boundary` names the parts of a
/// multipart answer (random per answer, from the caller).
pub fn answer(mut entry: Entry, conditions: &Conditions, now: u64, boundary: &str) -> Answer {
    let len = entry.body.len() as u64;
    let age = entry.age + now.saturating_sub(entry.stored_at) / 1000;
    set(&mut entry.headers, "cf-cache-status", "HIT".into());
    set(&mut entry.headers, "age", age.to_string());
    if not_modified(&entry, conditions) {
        // With the stored length, as Workers' cache answers.
        set(&mut entry.headers, "content-length", len.to_string());
        return Answer {
            status: 304,
            status_text: "Not Modified".into(),
            headers: entry.headers,
            body: None,
        };
    }
    let ranges = match conditions.range.as_deref() {
        Some(r) if entry.status == 200 && range_applies(&entry, conditions) => range::parse(r, len),
        _ => Ranges::Whole,
    };
    if ranges == Ranges::Unsatisfiable {
        let mut headers = vec![("content-range".to_string(), format!("bytes */{len}"))];
        headers.push(("cf-cache-status".into(), "HIT".into()));
        return Answer {
            status: 416,
            status_text: "Range Not Satisfiable".into(),
            headers,
            body: None,
        };
    }
    match ranges {
        Ranges::Parts(parts) if parts.len() == 1 => {
            let (start, end) = parts[0];
            set(
                &mut entry.headers,
                "content-range",
                format!("bytes {start}-{end}/{len}"),
            );
            set(
                &mut entry.headers,
                "content-length",
                (end - start + 1).to_string(),
            );
            let body = entry.body[start as usize..=end as usize].to_vec();
            Answer {
                status: 206,
                status_text: "Partial Content".into(),
                headers: entry.headers,
                body: Some(body),
            }
        }
        Ranges::Parts(parts) => {
            let content_type = get(&entry.headers, "content-type").map(str::to_string);
            let mut body = Vec::new();
            for (start, end) in parts {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                if let Some(t) = &content_type {
                    body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
                }
                body.extend_from_slice(
                    format!("Content-Range: bytes {start}-{end}/{len}\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(&entry.body[start as usize..=end as usize]);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--").as_bytes());
            set(
                &mut entry.headers,
                "content-type",
                format!("multipart/byteranges; boundary={boundary}"),
            );
            set(&mut entry.headers, "content-length", body.len().to_string());
            Answer {
                status: 206,
                status_text: "Partial Content".into(),
                headers: entry.headers,
                body: Some(body),
            }
        }
        _ => {
            set(&mut entry.headers, "content-length", len.to_string());
            Answer {
                status: entry.status,
                status_text: reason(entry.status),
                headers: entry.headers,
                body: Some(entry.body),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("etag".into(), "\"v1\"".into()),
                (
                    "last-modified".into(),
                    "Sun, 06 Dec 2026 10:00:00 GMT".into(),
                ),
            ],
            body: b"0123456789".to_vec(),
            stored_at: 1_000_000,
            expires_at: 2_000_000,
            age: 5,
        }
    }

    fn with(f: impl FnOnce(&mut Conditions)) -> Answer {
        let mut c = Conditions::default();
        f(&mut c);
        answer(entry(), &c, 1_010_000, "B")
    }

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        get(&a.headers, name)
    }

    #[test]
    fn a_hit_says_so_with_its_age() {
        let a = with(|_| {});
        assert_eq!(
            (a.status, a.body.as_deref()),
            (200, Some(&b"0123456789"[..]))
        );
        assert_eq!(header(&a, "cf-cache-status"), Some("HIT"));
        assert_eq!(header(&a, "age"), Some("15"));
        assert_eq!(header(&a, "content-length"), Some("10"));
    }

    #[test]
    fn conditional_requests_get_304() {
        for inm in ["\"v1\"", "W/\"v1\"", "\"x\", \"v1\"", "*"] {
            let a = with(|c| c.if_none_match = Some(inm.into()));
            assert_eq!((a.status, a.body.is_none()), (304, true), "{inm}");
        }
        assert_eq!(
            with(|c| c.if_none_match = Some("\"v2\"".into())).status,
            200
        );
        // A failed If-None-Match is not saved by a current If-Modified-Since.
        let both = with(|c| {
            c.if_none_match = Some("\"v2\"".into());
            c.if_modified_since = Some("Sun, 06 Dec 2026 11:00:00 GMT".into());
        });
        assert_eq!(both.status, 200);
        let ims = |v: &str| with(|c| c.if_modified_since = Some(v.into())).status;
        assert_eq!(ims("Sun, 06 Dec 2026 10:00:00 GMT"), 304);
        assert_eq!(ims("Sun, 06 Dec 2026 09:59:59 GMT"), 200);
        assert_eq!(ims("yesterday"), 200);
    }

    #[test]
    fn ranges_are_cut_from_the_stored_body() {
        let a = with(|c| c.range = Some("bytes=2-4".into()));
        assert_eq!((a.status, a.body.as_deref()), (206, Some(&b"234"[..])));
        assert_eq!(header(&a, "content-range"), Some("bytes 2-4/10"));
        assert_eq!(header(&a, "content-length"), Some("3"));
        let a = with(|c| c.range = Some("bytes=10-".into()));
        assert_eq!((a.status, a.body.is_none()), (416, true));
        assert_eq!(header(&a, "content-range"), Some("bytes */10"));
        // 304 is decided before the range.
        let a = with(|c| {
            c.range = Some("bytes=99-".into());
            c.if_none_match = Some("\"v1\"".into());
        });
        assert_eq!(a.status, 304);
        // If-Range naming another version: the whole body; naming this one: the range.
        let range_if = |v: &str| {
            with(|c| {
                c.range = Some("bytes=0-1".into());
                c.if_range = Some(v.into());
            })
            .status
        };
        assert_eq!(range_if("\"v0\""), 200);
        assert_eq!(range_if("\"v1\""), 206);
        assert_eq!(range_if("W/\"v1\""), 200);
        assert_eq!(range_if("Sun, 06 Dec 2026 10:00:00 GMT"), 206);
        assert_eq!(range_if("Sun, 06 Dec 2026 10:00:01 GMT"), 200);
        let a = with(|c| c.range = Some("bytes=0-0,-1".into()));
        assert_eq!(a.status, 206);
        assert_eq!(
            header(&a, "content-type"),
            Some("multipart/byteranges; boundary=B")
        );
        assert_eq!(
            String::from_utf8(a.body.unwrap()).unwrap(),
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/10\r\n\r\n0\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 9-9/10\r\n\r\n9\r\n--B--"
        );
    }
}
