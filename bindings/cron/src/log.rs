//! [`FireLog`]: the last slot fired per app and expression, written before the handler runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::Mutex;

use edge_binding::StoreError;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// Last fired slot (ms since the epoch) by (app, expression).
const FIRES: TableDefinition<(&str, &str), i64> = TableDefinition::new("fires");

/// A record of fired slots could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cron log: {0}")]
pub struct LogError(pub String);

/// Where the scheduler records what it fired. Calls block (a durable write): call them off
/// the async threads.
pub trait FireLog: Send + Sync + 'static {
    /// The last slot recorded for `expr` of `app`, in ms since the epoch.
    fn last(&self, app: &str, expr: &str) -> Result<Option<i64>, LogError>;

    /// Records `slot` for `expr` of `app` if it is later than the last one, durably; returns
    /// whether it did (only then may the caller fire it).
    fn record(&self, app: &str, expr: &str, slot: i64) -> Result<bool, LogError>;
}

/// Fired slots in memory (`edge check`, tests): forgotten at exit.
#[derive(Default)]
pub struct MemoryFireLog {
    fires: Mutex<HashMap<(String, String), i64>>,
}

impl FireLog for MemoryFireLog {
    fn last(&self, app: &str, expr: &str) -> Result<Option<i64>, LogError> {
        let fires = self.fires.lock().unwrap_or_else(|p| p.into_inner());
        Ok(fires.get(&(app.to_string(), expr.to_string())).copied())
    }

    fn record(&self, app: &str, expr: &str, slot: i64) -> Result<bool, LogError> {
        let mut fires = self.fires.lock().unwrap_or_else(|p| p.into_inner());
        let last = fires
            .entry((app.to_string(), expr.to_string()))
            .or_insert(i64::MIN);
        if slot <= *last {
            return Ok(false);
        }
        *last = slot;
        Ok(true)
    }
}

/// Fired slots in a redb file (`cron.redb` in the node's data directory); each record is
/// committed durably before it returns.
pub struct RedbFireLog {
    db: Database,
}

impl RedbFireLog {
    /// The file a data directory keeps fired slots in.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join("cron.redb")
    }

    /// Opens (creating if needed) the log in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = edge_binding::open_redb(path)?;
        let failed = |e: redb::Error| StoreError::failed(path, e);
        let txn = db.begin_write().map_err(|e| failed(e.into()))?;
        txn.open_table(FIRES).map_err(|e| failed(e.into()))?;
        txn.commit().map_err(|e| failed(e.into()))?;
        Ok(Self { db })
    }
}

fn err(e: impl std::fmt::Display) -> LogError {
    LogError(e.to_string())
}

impl FireLog for RedbFireLog {
    fn last(&self, app: &str, expr: &str) -> Result<Option<i64>, LogError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(FIRES).map_err(err)?;
        Ok(table.get((app, expr)).map_err(err)?.map(|v| v.value()))
    }

    fn record(&self, app: &str, expr: &str, slot: i64) -> Result<bool, LogError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate).map_err(err)?;
        {
            let mut table = txn.open_table(FIRES).map_err(err)?;
            let last = table.get((app, expr)).map_err(err)?.map(|v| v.value());
            if last.is_some_and(|last| slot <= last) {
                return Ok(false);
            }
            table.insert((app, expr), slot).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records_each_slot_once(log: &dyn FireLog) {
        assert_eq!(log.last("a", "* * * * *").unwrap(), None);
        assert!(log.record("a", "* * * * *", 60_000).unwrap());
        assert!(!log.record("a", "* * * * *", 60_000).unwrap());
        assert!(!log.record("a", "* * * * *", 0).unwrap());
        assert!(log.record("b", "* * * * *", 60_000).unwrap());
        assert!(log.record("a", "* * * * *", 120_000).unwrap());
        assert_eq!(log.last("a", "* * * * *").unwrap(), Some(120_000));
    }

    #[test]
    fn memory_records_each_slot_once() {
        records_each_slot_once(&MemoryFireLog::default());
    }

    #[test]
    fn redb_records_each_slot_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("edge-cron-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = RedbFireLog::file_in(&dir);
        records_each_slot_once(&RedbFireLog::open(&path).unwrap());
        let reopened = RedbFireLog::open(&path).unwrap();
        assert_eq!(reopened.last("a", "* * * * *").unwrap(), Some(120_000));
        assert!(matches!(
            RedbFireLog::open(&path),
            Err(StoreError::InUse { .. })
        ));
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
