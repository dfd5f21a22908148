//! `list` cursors: opaque to callers, and valid however keys change in between, because a
//! cursor is the last key returned and the next page starts after it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{KvError, KvOp};

/// Marks the cursor format so it can change without misreading old cursors.
const VERSION: u8 = 1;

/// The cursor that continues a listing after `last_key`.
pub fn encode(last_key: &str) -> String {
    let mut bytes = Vec::with_capacity(last_key.len() + 1);
    bytes.push(VERSION);
    bytes.extend_from_slice(last_key.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key a cursor continues after.
pub fn decode(cursor: &str) -> Result<String, KvError> {
    let invalid = || {
        KvError::rule(
            KvOp::List,
            400,
            format!("Invalid cursor {cursor:?}: pass a cursor returned by list()."),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    match bytes.split_first() {
        Some((&VERSION, key)) => String::from_utf8(key.to_vec()).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for key in ["a", "key/with spaces", "日本語", &"z".repeat(512)] {
            assert_eq!(decode(&encode(key)).unwrap(), key);
        }
        assert!(decode("not a cursor!").is_err());
        assert!(decode("").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode([9, b'a'])).is_err());
    }
}
