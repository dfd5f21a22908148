//! What can fail in the cache.

/// A cache operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[cfg_attr(feature = "js", derive(deno_error::JsError))]
#[non_exhaustive]
pub enum CacheError {
    /// The node's cache storage failed (disk, a damaged file).
    #[cfg_attr(feature = "js", class(generic))]
    #[error("the cache storage failed: {0}")]
    Storage(String),
    /// The app has too much waiting to be written: one memory limit of puts and deletes.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("Unable to delete cached response: too many cache writes are waiting.")]
    Busy,
    /// The node is shutting down or the storage is gone.
    #[cfg_attr(feature = "js", class(generic))]
    #[error("the cache is closed")]
    Closed,
}

impl From<redb::Error> for CacheError {
    fn from(e: redb::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for CacheError {
            fn from(e: $t) -> Self {
                Self::Storage(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
