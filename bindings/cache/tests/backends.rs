//! Both backends against the same expectations: entries by key, expiry, delete, bounds; and the
//! redb file keeping its entries (and their eviction order) across a reopen.

use std::sync::Arc;

use edge_cache::{Bounds, CacheBackend, Entry, EntryKey, MemoryBackend, RedbBackend};

fn key(app: &str, cache: &str, url: &str) -> EntryKey {
    EntryKey {
        app: app.into(),
        cache: cache.into(),
        url: url.into(),
    }
}

fn entry(body: &str, stored_at: u64, expires_at: u64) -> Entry {
    Entry {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
        stored_at,
        expires_at,
        age: 0,
    }
}

async fn body(b: &dyn CacheBackend, k: &EntryKey, now: u64) -> Option<String> {
    b.get(k, now)
        .await
        .unwrap()
        .map(|e| String::from_utf8(e.body).unwrap())
}

async fn behaves(b: Arc<dyn CacheBackend>) {
    let k = key("a", "", "https://x.test/1");
    assert!(b.put(k.clone(), entry("one", 1000, 5000)).await.unwrap());
    assert_eq!(body(&*b, &k, 2000).await.as_deref(), Some("one"));
    // Another app, another cache: other entries.
    assert_eq!(
        body(&*b, &key("b", "", "https://x.test/1"), 2000).await,
        None
    );
    assert_eq!(
        body(&*b, &key("a", "=named", "https://x.test/1"), 2000).await,
        None
    );
    // Expired: invisible, and deleting it finds nothing fresh.
    assert_eq!(body(&*b, &k, 5000).await, None);
    assert!(!b.delete(&k, 5000).await.unwrap());
    assert!(b.put(k.clone(), entry("two", 1000, 9000)).await.unwrap());
    assert!(b.delete(&k, 2000).await.unwrap());
    assert_eq!(body(&*b, &k, 2000).await, None);
    // Larger than an app may hold: not stored.
    let big = "x".repeat(4000);
    assert!(!b.put(k.clone(), entry(&big, 1000, 9000)).await.unwrap());
    assert_eq!(b.usage().entries, 0);
}

fn bounds() -> Bounds {
    Bounds {
        // Room for three of the 250-byte entries below (each is charged its index and file
        // overhead too, edge_cache::ENTRY_OVERHEAD), not four.
        node_bytes: 10_000,
        app_bytes: 3200,
    }
}

#[tokio::test]
async fn memory_backend() {
    behaves(Arc::new(MemoryBackend::new(bounds()))).await;
}

#[tokio::test]
async fn redb_backend() {
    let dir = std::env::temp_dir().join(format!("edge-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = RedbBackend::file_in(&dir);
    behaves(Arc::new(RedbBackend::open(&path, bounds()).unwrap())).await;
}

#[tokio::test]
async fn a_reopened_file_keeps_its_entries_and_their_order() {
    let dir = std::env::temp_dir().join(format!("edge-cache-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = RedbBackend::file_in(&dir);
    let far = u64::MAX / 2;
    {
        let b = RedbBackend::open(&path, bounds()).unwrap();
        for (i, at) in [(1, 100), (2, 200), (3, 300)] {
            let k = key("a", "", &format!("https://x.test/{i}"));
            assert!(b.put(k, entry(&"y".repeat(250), at, far)).await.unwrap());
        }
        let gone = key("a", "", "https://x.test/gone");
        assert!(b.put(gone, entry("short", 400, 500)).await.unwrap());
    }
    // Dropping the backend syncs the file; reopened, the entries are there, the expired one
    // is removed, and the oldest goes first when the app's bound is reached.
    let b = RedbBackend::open(&path, bounds()).unwrap();
    assert_eq!(b.usage().entries, 3);
    let k4 = key("a", "", "https://x.test/4");
    assert!(
        b.put(k4.clone(), entry(&"y".repeat(250), 600, far))
            .await
            .unwrap()
    );
    assert_eq!(body(&b, &key("a", "", "https://x.test/1"), 700).await, None);
    assert!(
        body(&b, &key("a", "", "https://x.test/2"), 700)
            .await
            .is_some()
    );
    assert!(body(&b, &k4, 700).await.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
