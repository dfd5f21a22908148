//! The `Range` header of a `match`, against a stored body of known length (RFC 9110 §14, with
//! the leniency of Workers' cache: any spacing, `bytes` in any case, an empty set meaning the
//! whole body).

/// What a `Range` header asks of a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// The whole body (no usable range: a suffix longer than the body, or an empty list).
    Whole,
    /// These inclusive byte ranges, in the order asked.
    Parts(Vec<(u64, u64)>),
    /// Nothing the body can satisfy (or a header that is not a byte range): 416.
    Unsatisfiable,
}

/// Most ranges one request may ask for; more are answered with the whole body (a server may
/// ignore `Range`), so a header cannot make the answer many times the size of the body.
pub const MAX_RANGES: usize = 64;

/// Parses `header` for a body of `len` bytes.
pub fn parse(header: &str, len: u64) -> Ranges {
    let header = header.trim_start_matches(' ');
    let Some(rest) = header
        .get(..5)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes"))
        .map(|_| header[5..].trim_start_matches(' '))
    else {
        return Ranges::Unsatisfiable;
    };
    let Some(rest) = rest.strip_prefix('=') else {
        return Ranges::Unsatisfiable;
    };
    if rest.trim_start().is_empty() {
        return Ranges::Whole;
    }
    let mut parts = Vec::new();
    let mut total: u64 = 0;
    for spec in rest.split(',') {
        let Some((start, end)) = spec.split_once('-') else {
            return Ranges::Unsatisfiable;
        };
        let number = |s: &str| -> Result<Option<u64>, ()> {
            let s = s.trim_matches(' ');
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                // Past u64 is past any body.
                Ok(Some(s.parse().unwrap_or(u64::MAX)))
            } else {
                Err(())
            }
        };
        let (Ok(start), Ok(end)) = (number(start), number(end)) else {
            return Ranges::Unsatisfiable;
        };
        let part = match (start, end) {
            (Some(start), Some(end)) => {
                if start > end || start >= len {
                    return Ranges::Unsatisfiable;
                }
                (start, end.min(len - 1))
            }
            (Some(start), None) => {
                if start >= len {
                    return Ranges::Unsatisfiable;
                }
                (start, len - 1)
            }
            (None, Some(suffix)) => {
                if suffix >= len {
                    return Ranges::Whole;
                }
                if suffix == 0 {
                    continue;
                }
                (len - suffix, len - 1)
            }
            (None, None) => return Ranges::Unsatisfiable,
        };
        total = total.saturating_add(part.1 - part.0 + 1);
        parts.push(part);
        if parts.len() > MAX_RANGES || total > len {
            return Ranges::Whole;
        }
    }
    if parts.is_empty() {
        // Only empty suffixes (`-0`): nothing to cut, the whole body.
        return Ranges::Whole;
    }
    Ranges::Parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_workers_reads_them() {
        assert_eq!(parse("bytes=0-4", 10), Ranges::Parts(vec![(0, 4)]));
        assert_eq!(parse(" ByTeS = 2-", 10), Ranges::Parts(vec![(2, 9)]));
        assert_eq!(parse("bytes=-3", 10), Ranges::Parts(vec![(7, 9)]));
        assert_eq!(parse("bytes=5-100", 10), Ranges::Parts(vec![(5, 9)]));
        assert_eq!(
            parse("bytes=0-1, 4-5", 10),
            Ranges::Parts(vec![(0, 1), (4, 5)])
        );
        assert_eq!(parse("bytes=-20", 10), Ranges::Whole);
        assert_eq!(parse("bytes=", 10), Ranges::Whole);
        assert_eq!(parse("bytes=-0", 10), Ranges::Whole);
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes 0-1",
        ] {
            assert_eq!(parse(bad, 10), Ranges::Unsatisfiable, "{bad}");
        }
        assert_eq!(
            parse("bytes=99999999999999999999999-", 10),
            Ranges::Unsatisfiable
        );
    }

    #[test]
    fn a_header_cannot_multiply_the_body() {
        let many = format!("bytes={}", vec!["0-0"; 65].join(","));
        assert_eq!(parse(&many, 10), Ranges::Whole);
        assert_eq!(parse("bytes=0-9,0-9", 10), Ranges::Whole);
    }
}
