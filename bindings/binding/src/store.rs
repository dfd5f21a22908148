//! [`NodeStore`]: where a node's bindings keep their data.
//!
//! One file per binding in the node's data directory (`kv.redb`, `queues.redb`, …), not one
//! database for all: redb lets one write transaction run at a time per database, so KV's
//! group commits and a queue's acks would wait on each other; each binding picks its own
//! durability and compaction; a damaged file takes one binding down, not every one; and the
//! CLI can open one binding's file while a node holds another's.

use std::path::{Path, PathBuf};

/// Where a node's bindings keep their node-wide data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeStore {
    /// Files in this directory, one per binding (`edge serve --data-dir`, `edge dev`'s
    /// `.edge/`).
    Dir(PathBuf),
    /// In memory, gone when the process exits (`edge check`, tests).
    Memory,
}

impl NodeStore {
    /// The data directory, if the store has one.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Self::Dir(dir) => Some(dir),
            Self::Memory => None,
        }
    }
}

/// A binding's storage could not be opened.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (a running node) has the file open.
    #[error("{} is in use by another process (another edge process is using this data directory: stop it, or give this one its own with --data-dir / --persist-to)", path.display())]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be created, opened or read.
    #[error("cannot open {}: {message}", path.display())]
    Failed {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl StoreError {
    /// A failure to open or prepare `path`.
    pub fn failed(path: &Path, message: impl ToString) -> Self {
        Self::Failed {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Opens (creating it and its directory if needed) the redb file `path`, readable by the
/// node's user only (tenants' data): the one way bindings open their files, so every binding
/// reports a file another process holds, or one it cannot open, the same way.
pub fn open_redb(path: &Path) -> Result<redb::Database, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::failed(path, e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| StoreError::failed(path, e))?;
    }
    match redb::Database::create(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(StoreError::failed(path, e)),
    }
}
