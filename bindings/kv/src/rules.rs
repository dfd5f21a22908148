//! Workers KV's limits, checked before any backend sees a call. Each check names the rule and
//! the offending value, in the words Workers uses.

use crate::error::{KvError, KvOp};

/// Longest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes (25 MiB).
pub const MAX_VALUE_BYTES: usize = 25 << 20;
/// Largest metadata, as serialized JSON.
pub const MAX_METADATA_BYTES: usize = 1024;
/// Shortest `expirationTtl`, and how far in the future an absolute `expiration` must be.
pub const MIN_TTL_SECS: u64 = 60;
/// Shortest `cacheTtl` `get` accepts.
pub const MIN_CACHE_TTL_SECS: u64 = 60;
/// Default and largest `limit` of `list`.
pub const MAX_LIST_LIMIT: usize = 1000;
/// Most keys in one bulk `get`.
pub const MAX_BULK_KEYS: usize = 100;

/// A key: 1–512 bytes, and not `.` or `..`.
pub fn check_key(op: KvOp, key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::rule(op, 400, "Key names must not be empty."));
    }
    if key == "." || key == ".." {
        return Err(KvError::rule(
            op,
            400,
            format!("Illegal key name \"{key}\". Please use a different name."),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::rule(
            op,
            414,
            format!(
                "UTF-8 encoded length of {} exceeds key length limit of {MAX_KEY_BYTES}.",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// A value: at most 25 MiB.
pub fn check_value(len: usize) -> Result<(), KvError> {
    if len > MAX_VALUE_BYTES {
        return Err(KvError::rule(
            KvOp::Put,
            413,
            format!("Value length of {len} exceeds limit of {MAX_VALUE_BYTES}."),
        ));
    }
    Ok(())
}

/// Serialized metadata: at most 1024 bytes.
pub fn check_metadata(json: &str) -> Result<(), KvError> {
    if json.len() > MAX_METADATA_BYTES {
        return Err(KvError::rule(
            KvOp::Put,
            413,
            format!(
                "Metadata length of {} exceeds limit of {MAX_METADATA_BYTES}.",
                json.len()
            ),
        ));
    }
    Ok(())
}

/// The absolute expiration a `put` asks for, from `expiration` (seconds since the epoch) or
/// `expirationTtl` (seconds from `now`); `expirationTtl` wins when both are given, as in
/// Workers. Fractions are dropped.
pub fn expiration(
    now: u64,
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
) -> Result<Option<u64>, KvError> {
    if let Some(ttl) = expiration_ttl {
        if !ttl.is_finite() || ttl < 1.0 {
            return Err(KvError::rule(
                KvOp::Put,
                400,
                format!(
                    "Invalid expiration_ttl of {}. Please specify integer greater than 0.",
                    show(ttl)
                ),
            ));
        }
        let ttl = ttl as u64;
        if ttl < MIN_TTL_SECS {
            return Err(KvError::rule(
                KvOp::Put,
                400,
                format!(
                    "Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {MIN_TTL_SECS}."
                ),
            ));
        }
        return Ok(Some(now.saturating_add(ttl)));
    }
    if let Some(at) = expiration {
        if !at.is_finite() || at < 1.0 {
            return Err(KvError::rule(
                KvOp::Put,
                400,
                format!(
                    "Invalid expiration of {}. Please specify integer greater than the current number of seconds since the UNIX epoch.",
                    show(at)
                ),
            ));
        }
        let at = at as u64;
        if at < now + MIN_TTL_SECS {
            return Err(KvError::rule(
                KvOp::Put,
                400,
                format!(
                    "Invalid expiration of {at}. Expiration times must be at least {MIN_TTL_SECS} seconds in the future."
                ),
            ));
        }
        return Ok(Some(at));
    }
    Ok(None)
}

/// `get`'s `cacheTtl`: accepted for compatibility (reads here are always fresh) but checked.
pub fn check_cache_ttl(ttl: f64) -> Result<(), KvError> {
    if !ttl.is_finite() || ttl < MIN_CACHE_TTL_SECS as f64 {
        return Err(KvError::rule(
            KvOp::Get,
            400,
            format!(
                "Invalid cache_ttl of {}. Cache TTL must be at least {MIN_CACHE_TTL_SECS}.",
                show(ttl)
            ),
        ));
    }
    Ok(())
}

/// `list`'s `limit`: 1–1000, default 1000.
pub fn list_limit(limit: Option<f64>) -> Result<usize, KvError> {
    let Some(limit) = limit else {
        return Ok(MAX_LIST_LIMIT);
    };
    if !limit.is_finite() || limit < 1.0 {
        return Err(KvError::rule(
            KvOp::List,
            400,
            format!(
                "Invalid key_count_limit of {}. Please specify an integer greater than 0.",
                show(limit)
            ),
        ));
    }
    if limit > MAX_LIST_LIMIT as f64 {
        return Err(KvError::rule(
            KvOp::List,
            400,
            format!(
                "Invalid key_count_limit of {}. Please specify an integer less than {MAX_LIST_LIMIT}.",
                show(limit)
            ),
        ));
    }
    Ok(limit as usize)
}

/// A bulk `get`: 1–100 keys, each valid.
pub fn check_bulk(keys: &[String]) -> Result<(), KvError> {
    if keys.is_empty() || keys.len() > MAX_BULK_KEYS {
        return Err(KvError::rule(
            KvOp::Get,
            400,
            format!(
                "You can request between 1 and {MAX_BULK_KEYS} keys in one get, not {}.",
                keys.len()
            ),
        ));
    }
    keys.iter().try_for_each(|k| check_key(KvOp::Get, k))
}

fn show(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key(KvOp::Get, "a").is_ok());
        assert!(check_key(KvOp::Get, &"k".repeat(512)).is_ok());
        let e = check_key(KvOp::Put, &"k".repeat(513)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
        );
        // Bytes, not characters: 171 three-byte characters are 513 bytes.
        assert!(check_key(KvOp::Get, &"€".repeat(171)).is_err());
        assert!(check_key(KvOp::Get, "").is_err());
        assert!(
            check_key(KvOp::Get, ".")
                .unwrap_err()
                .to_string()
                .contains("Illegal key name \".\"")
        );
        assert!(check_key(KvOp::Get, "..").is_err());
        assert!(check_key(KvOp::Get, "...").is_ok());
    }

    #[test]
    fn expirations() {
        let now = 1_000_000;
        assert_eq!(expiration(now, None, None).unwrap(), None);
        assert_eq!(expiration(now, None, Some(60.0)).unwrap(), Some(now + 60));
        assert_eq!(expiration(now, None, Some(90.7)).unwrap(), Some(now + 90));
        assert!(
            expiration(now, None, Some(59.0))
                .unwrap_err()
                .to_string()
                .contains("Expiration TTL must be at least 60")
        );
        assert!(expiration(now, None, Some(f64::NAN)).is_err());
        assert_eq!(
            expiration(now, Some((now + 60) as f64), None).unwrap(),
            Some(now + 60)
        );
        assert!(
            expiration(now, Some((now + 59) as f64), None)
                .unwrap_err()
                .to_string()
                .contains("at least 60 seconds in the future")
        );
        // expirationTtl wins over expiration.
        assert_eq!(
            expiration(now, Some(1.0), Some(120.0)).unwrap(),
            Some(now + 120)
        );
    }

    #[test]
    fn limits() {
        assert_eq!(list_limit(None).unwrap(), 1000);
        assert_eq!(list_limit(Some(1.0)).unwrap(), 1);
        assert!(list_limit(Some(0.0)).is_err());
        assert!(
            list_limit(Some(1001.0))
                .unwrap_err()
                .to_string()
                .contains("less than 1000")
        );
        assert!(check_value(MAX_VALUE_BYTES).is_ok());
        assert!(check_value(MAX_VALUE_BYTES + 1).is_err());
        assert!(check_metadata(&"x".repeat(1024)).is_ok());
        assert!(
            check_metadata(&"x".repeat(1025))
                .unwrap_err()
                .to_string()
                .contains("413 Metadata length of 1025")
        );
        assert!(check_cache_ttl(30.0).is_err());
        assert!(check_bulk(&[]).is_err());
        assert!(check_bulk(&vec!["a".to_string(); 101]).is_err());
    }
}
