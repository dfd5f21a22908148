//! Headers as they cross between Rust and the isolate: one byte string, `name\nvalue\n` per
//! header, instead of an array of pairs.
//!
//! Converting each header name and value as its own engine string costs about 5,700
//! instructions on the quickjs backend (callgrind, per string), and an array of pairs adds an
//! object per header; one string per direction costs one conversion whatever the count. A
//! newline cannot occur in a header name or value (hyper and the `Headers` class both reject
//! it), so it separates them unambiguously. Bytes are Latin-1 characters on the JS side, as
//! `ByteString` headers always are.

/// Joins `headers` into one block (as `host.js` does for a response, and
/// `incoming::join_head` for a request's).
#[cfg(test)]
fn join<'a>(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.extend_from_slice(name);
        block.push(b'\n');
        block.extend_from_slice(value);
        block.push(b'\n');
    }
    block
}

/// The `(name, value)` pairs of a block; a trailing half pair (a malformed block) is ignored.
pub(super) fn split(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut parts = block.split(|b| *b == b'\n');
    std::iter::from_fn(move || {
        let name = parts.next()?;
        let value = parts.next()?;
        Some((name, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_headers_with_any_other_bytes() {
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-latin1", b"caf\xe9: \t ok"),
            (b"x-empty", b""),
        ];
        let block = join(headers.iter().copied());
        let back: Vec<_> = split(&block).collect();
        assert_eq!(back, headers);
    }

    #[test]
    fn an_empty_block_has_no_headers() {
        assert_eq!(split(b"").count(), 0);
        assert_eq!(split(&join(std::iter::empty())).count(), 0);
    }
}
