//! What can go wrong in a KV call, with the class JavaScript sees.
//!
//! Messages follow the Workers runtime's wording (`KV PUT failed: 400 …`) so code that matches
//! on them, and people who know them, are not surprised.

use std::fmt;

/// The KV operation an error belongs to, as Workers names it in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvOp {
    /// `get`, `getWithMetadata`.
    Get,
    /// `put`.
    Put,
    /// `delete`.
    Delete,
    /// `list`.
    List,
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvOp::Get => "GET",
            KvOp::Put => "PUT",
            KvOp::Delete => "DELETE",
            KvOp::List => "LIST",
        })
    }
}

/// Why a KV call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[cfg_attr(feature = "js", derive(deno_error::JsError))]
#[non_exhaustive]
pub enum KvError {
    /// The input breaks one of the KV rules (key, value, metadata, expiration, limit, cursor);
    /// `status` is the HTTP status Workers reports for it.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("KV {op} failed: {status} {reason}")]
    Rule {
        /// The operation.
        op: KvOp,
        /// 400, 413 or 414, as in Workers.
        status: u16,
        /// Which rule, with the offending value.
        reason: String,
    },
    /// The store failed (I/O, corruption); the operation did not happen.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("KV {op} failed: storage error: {message}")]
    Storage {
        /// The operation.
        op: KvOp,
        /// What the storage layer said.
        message: String,
    },
    /// The write would take its namespace past the node's storage quota.
    #[cfg_attr(feature = "js", class(generic))]
    #[error(
        "KV PUT failed: 413 namespace storage quota of {quota} bytes exceeded ({used} bytes stored, this write needs {needed} more)"
    )]
    Quota {
        /// The quota, in bytes.
        quota: u64,
        /// Bytes the namespace holds.
        used: u64,
        /// Bytes the write would add.
        needed: u64,
    },
    /// Too many bytes of this isolate's writes are still waiting to be committed: an app that
    /// does not await its puts cannot pile up memory outside its heap.
    #[cfg_attr(feature = "js", class(generic))]
    #[error(
        "KV PUT failed: 429 too many writes awaiting commit: {pending} bytes of this app's puts are not yet durable (at most {limit}); await earlier puts"
    )]
    Backlog {
        /// Bytes already waiting.
        pending: u64,
        /// The most that may wait.
        limit: u64,
    },
    /// The store has shut down (the node is stopping).
    #[cfg_attr(feature = "js", class(generic))]
    #[error("KV {op} failed: the store is closed")]
    Closed {
        /// The operation.
        op: KvOp,
    },
    /// A binding index that this isolate was not given (never happens through the JS API).
    #[cfg_attr(feature = "js", class(reference))]
    #[error("KV namespace binding {0} is not bound to this app")]
    NotBound(u32),
}

impl KvError {
    /// A rule violation reported as `status` (400, 413 or 414).
    pub fn rule(op: KvOp, status: u16, reason: impl Into<String>) -> Self {
        KvError::Rule {
            op,
            status,
            reason: reason.into(),
        }
    }

    /// A storage failure.
    pub fn storage(op: KvOp, e: impl fmt::Display) -> Self {
        KvError::Storage {
            op,
            message: e.to_string(),
        }
    }

    /// The HTTP status an API (the admin endpoint) should answer with.
    pub fn status(&self) -> u16 {
        match self {
            KvError::Rule { status, .. } => *status,
            KvError::Quota { .. } => 413,
            KvError::Backlog { .. } => 429,
            KvError::NotBound(_) => 404,
            KvError::Storage { .. } => 500,
            KvError::Closed { .. } => 503,
        }
    }
}
