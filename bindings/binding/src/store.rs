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
    /// The file `name` (`"kv.redb"`) for a binding's data, or `None` in memory.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        match self {
            Self::Dir(dir) => Some(dir.join(name)),
            Self::Memory => None,
        }
    }

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
