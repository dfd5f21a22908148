//! [`FireLog`]: the last slot fired per app and expression, written before the handler runs.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use std::sync::Mutex;

use edge_binding::StoreError;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// Last fired slot (ms since the epoch) by (app, expression).
const FIRES: TableDefinition<(&str, &str), i64> = TableDefinition::new("fires");

/// A record of fired slots could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cron log: {0}")]
pub struct LogError(pub String);

/// A fire-log operation to come.
pub type LogFuture<T> = Pin<Box<dyn Future<Output = Result<T, LogError>> + Send>>;

/// Where the scheduler records what it fired. Async and free of redb types, so a shared
/// (multi-node) log can sit behind it later.
pub trait FireLog: Send + Sync + 'static {
    /// The last slot recorded for `expr` of `app`, in ms since the epoch.
    fn last(&self, app: &str, expr: &str) -> LogFuture<Option<i64>>;

    /// Records `slot` for `expr` of `app` if it is later than the last one, durably; resolves
    /// to whether it did (only then may the caller fire it).
    fn record(&self, app: &str, expr: &str, slot: i64) -> LogFuture<bool>;
}

/// Fired slots in memory (`edge check`, tests): forgotten at exit.
#[derive(Default)]
pub struct MemoryFireLog {
    fires: Mutex<HashMap<(String, String), i64>>,
}

impl FireLog for MemoryFireLog {
    fn last(&self, app: &str, expr: &str) -> LogFuture<Option<i64>> {
        let fires = self.fires.lock().unwrap_or_else(|p| p.into_inner());
        let last = fires.get(&(app.to_string(), expr.to_string())).copied();
        Box::pin(async move { Ok(last) })
    }

    fn record(&self, app: &str, expr: &str, slot: i64) -> LogFuture<bool> {
        let mut fires = self.fires.lock().unwrap_or_else(|p| p.into_inner());
        let last = fires
            .entry((app.to_string(), expr.to_string()))
            .or_insert(i64::MIN);
        let recorded = slot > *last;
        if recorded {
            *last = slot;
        }
        Box::pin(async move { Ok(recorded) })
    }
}

/// Fired slots in a redb file (`cron.redb` in the node's data directory); each record is
/// committed durably before it returns.
pub struct RedbFireLog {
    db: Arc<Database>,
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
        Ok(Self { db: Arc::new(db) })
    }
}

fn err(e: impl std::fmt::Display) -> LogError {
    LogError(e.to_string())
}

impl RedbFireLog {
    fn last_now(db: &Database, app: &str, expr: &str) -> Result<Option<i64>, LogError> {
        let txn = db.begin_read().map_err(err)?;
        let table = txn.open_table(FIRES).map_err(err)?;
        Ok(table.get((app, expr)).map_err(err)?.map(|v| v.value()))
    }

    fn record_now(db: &Database, app: &str, expr: &str, slot: i64) -> Result<bool, LogError> {
        let mut txn = db.begin_write().map_err(err)?;
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

/// Runs `work` on the blocking pool (a durable write waits for the disk).
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> LogFuture<T> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| LogError(e.to_string()))?
    })
}

impl FireLog for RedbFireLog {
    fn last(&self, app: &str, expr: &str) -> LogFuture<Option<i64>> {
        let (db, app, expr) = (self.db.clone(), app.to_string(), expr.to_string());
        blocking(move || Self::last_now(&db, &app, &expr))
    }

    fn record(&self, app: &str, expr: &str, slot: i64) -> LogFuture<bool> {
        let (db, app, expr) = (self.db.clone(), app.to_string(), expr.to_string());
        blocking(move || Self::record_now(&db, &app, &expr, slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn records_each_slot_once(log: &dyn FireLog) {
        let e = "* * * * *";
        assert_eq!(log.last("a", e).await.unwrap(), None);
        assert!(log.record("a", e, 60_000).await.unwrap());
        assert!(!log.record("a", e, 60_000).await.unwrap());
        assert!(!log.record("a", e, 0).await.unwrap());
        assert!(log.record("b", e, 60_000).await.unwrap());
        assert!(log.record("a", e, 120_000).await.unwrap());
        assert_eq!(log.last("a", e).await.unwrap(), Some(120_000));
    }

    #[tokio::test]
    async fn memory_records_each_slot_once() {
        records_each_slot_once(&MemoryFireLog::default()).await;
    }

    #[tokio::test]
    async fn redb_records_each_slot_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("edge-cron-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = RedbFireLog::file_in(&dir);
        records_each_slot_once(&RedbFireLog::open(&path).unwrap()).await;
        let reopened = RedbFireLog::open(&path).unwrap();
        assert_eq!(
            reopened.last("a", "* * * * *").await.unwrap(),
            Some(120_000)
        );
        assert!(matches!(
            RedbFireLog::open(&path),
            Err(StoreError::InUse { .. })
        ));
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
