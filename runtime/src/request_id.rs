//! Request ids: unique within a process, distinct across restarts, written as 16 hex digits
//! (the process's boot tag, then a counter). Kept as numbers and written only when a log line or
//! an error response needs them, so the hot path neither formats nor allocates one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One request's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    boot: u32,
    seq: u64,
}

impl RequestId {
    /// An id made of a boot tag and a sequence number (tests and tools).
    pub fn new(boot: u32, seq: u64) -> Self {
        Self { boot, seq }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}{:08x}", self.boot, self.seq)
    }
}

/// Hands out the ids of one process.
pub struct RequestIds {
    boot: u32,
    next: AtomicU64,
}

impl RequestIds {
    /// Ids tagged with a value drawn at random for this process.
    pub fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self {
            boot: RandomState::new().hash_one(std::process::id()) as u32,
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub fn next(&self) -> RequestId {
        RequestId {
            boot: self.boot,
            seq: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_sixteen_hex_digits() {
        assert_eq!(
            RequestId::new(0xdead_beef, 42).to_string(),
            "deadbeef0000002a"
        );
        let ids = RequestIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 16);
    }
}
