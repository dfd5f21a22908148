//! How a message's metadata is stored: version (1), content type (1), attempts (4, LE), body
//! bytes (4, LE), timestamp ms (8, LE), visible-at ms (8, LE), then the id's bytes.

use super::index::Meta;
use crate::message::ContentType;

const VERSION: u8 = 1;
const FIXED: usize = 1 + 1 + 4 + 4 + 8 + 8;

pub(crate) fn encode(meta: &Meta) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED + meta.id.len());
    out.push(VERSION);
    out.push(meta.content_type.code());
    out.extend_from_slice(&meta.attempts.to_le_bytes());
    out.extend_from_slice(&meta.bytes.to_le_bytes());
    out.extend_from_slice(&meta.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&meta.visible_at_ms.to_le_bytes());
    out.extend_from_slice(meta.id.as_bytes());
    out
}

/// The metadata in `bytes`; `None` for a record this version cannot read.
pub(crate) fn decode(bytes: &[u8]) -> Option<Meta> {
    if bytes.len() < FIXED || bytes[0] != VERSION {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    Some(Meta {
        content_type: ContentType::from_code(bytes[1]),
        attempts: u32_at(2),
        bytes: u32_at(6),
        timestamp_ms: u64_at(10),
        visible_at_ms: u64_at(18),
        id: String::from_utf8_lossy(&bytes[FIXED..]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let meta = Meta {
            id: "0123456789abcdef0123456789abcdef".into(),
            timestamp_ms: 1_700_000_000_123,
            visible_at_ms: 1_700_000_005_123,
            attempts: 3,
            bytes: 70_000,
            content_type: ContentType::V8,
        };
        assert_eq!(decode(&encode(&meta)), Some(meta));
        assert_eq!(decode(&[2, 0, 0]), None);
    }
}
