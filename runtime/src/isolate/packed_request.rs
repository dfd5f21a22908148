//! A request as it crosses into the isolate: one string, not an object.
//!
//! `id \n body \n method \n url \n header-block`, where `body` is empty (no body), `b` (bytes
//! the script takes with `op_edge_request_bytes`) or `s` and a resource id (a stream), and the
//! header block is [`super::header_block`]'s. On the quickjs backend, building a six-field
//! object for every request cost about 12,400 instructions (callgrind, hello app); one string
//! costs one conversion, and `host.js` cuts it apart with `indexOf`/`slice`. A newline cannot
//! occur in a method, a URL or a header (hyper rejects them), so it separates the fields.

/// How the request's body reaches the script.
pub(crate) enum PackedBody {
    /// No body.
    None,
    /// Bytes held for the script to take.
    Bytes,
    /// A stream, as this resource id.
    Stream(u32),
}

/// Packs a request. Header bytes become Latin-1 characters, as a `ByteString` makes them.
pub(crate) fn pack(id: u32, body: PackedBody, method: &str, url: &str, headers: &[u8]) -> String {
    let mut out = String::with_capacity(24 + method.len() + url.len() + headers.len());
    out.push_str(&id.to_string());
    out.push('\n');
    match body {
        PackedBody::None => {}
        PackedBody::Bytes => out.push('b'),
        PackedBody::Stream(rid) => {
            out.push('s');
            out.push_str(&rid.to_string());
        }
    }
    out.push('\n');
    out.push_str(method);
    out.push('\n');
    out.push_str(url);
    out.push('\n');
    match std::str::from_utf8(headers) {
        Ok(text) if text.is_ascii() => out.push_str(text),
        _ => out.extend(headers.iter().map(|b| char::from(*b))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_fields_in_order() {
        let packed = pack(
            7,
            PackedBody::Stream(3),
            "POST",
            "http://a.test/x?y=1",
            b"host\na.test\n",
        );
        assert_eq!(packed, "7\ns3\nPOST\nhttp://a.test/x?y=1\nhost\na.test\n");
        assert_eq!(
            pack(0, PackedBody::None, "GET", "http://a/", b""),
            "0\n\nGET\nhttp://a/\n"
        );
        assert_eq!(
            pack(1, PackedBody::Bytes, "PUT", "http://a/", b"")
                .split('\n')
                .nth(1),
            Some("b")
        );
    }

    #[test]
    fn header_bytes_become_latin1_characters() {
        let packed = pack(1, PackedBody::None, "GET", "http://a/", b"x\ncaf\xe9\n");
        assert!(packed.ends_with("x\ncaf\u{e9}\n"), "{packed:?}");
    }
}
