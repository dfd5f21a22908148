//! The same behaviour checked on both backends, through `Namespace` as every caller uses it,
//! plus what only the redb backend has: durability across reopen, purging, group commit.

use std::sync::Arc;

use edge_kv::{
    KvBackend, ListOptions, ManualClock, MemoryBackend, Namespace, PutOptions, RedbBackend,
    RedbOptions,
};

fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-kv-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    RedbBackend::file_in(&dir)
}

fn backends(name: &str) -> Vec<(&'static str, Arc<dyn KvBackend>, ManualClock)> {
    let mem_clock = ManualClock::frozen();
    let redb_clock = ManualClock::frozen();
    let redb = RedbBackend::open(
        &temp_file(name),
        RedbOptions {
            clock: Arc::new(redb_clock.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    vec![
        (
            "memory",
            Arc::new(MemoryBackend::with_clock(Arc::new(mem_clock.clone()))),
            mem_clock,
        ),
        ("redb", Arc::new(redb), redb_clock),
    ]
}

fn ttl(secs: f64) -> PutOptions {
    PutOptions {
        expiration_ttl: Some(secs),
        ..Default::default()
    }
}

async fn names(ns: &Namespace, options: ListOptions) -> (Vec<String>, bool, Option<String>) {
    let page = ns.list(options).await.unwrap();
    (
        page.keys.into_iter().map(|k| k.name).collect(),
        page.list_complete,
        page.cursor,
    )
}

#[tokio::test]
async fn get_put_delete_metadata() {
    for (name, backend, _) in backends("basic") {
        let ns = Namespace::new(backend, "ns1");
        assert_eq!(ns.get("k").await.unwrap(), None, "{name}");
        let opts = PutOptions {
            metadata: Some(r#"{"a":1}"#.into()),
            ..Default::default()
        };
        ns.put("k", b"v1".to_vec(), opts).await.unwrap();
        let e = ns.get("k").await.unwrap().unwrap();
        assert_eq!(e.value, b"v1", "{name}");
        assert_eq!(e.metadata.as_deref(), Some(r#"{"a":1}"#), "{name}");
        // Overwrite drops the old metadata.
        ns.put("k", b"v2".to_vec(), PutOptions::default())
            .await
            .unwrap();
        let e = ns.get("k").await.unwrap().unwrap();
        assert_eq!(
            (e.value.as_slice(), e.metadata),
            (&b"v2"[..], None),
            "{name}"
        );
        ns.delete("k").await.unwrap();
        assert_eq!(ns.get("k").await.unwrap(), None, "{name}");
        ns.delete("never-there").await.unwrap();
        // Rules are enforced before the backend.
        assert!(
            ns.put("", vec![], PutOptions::default()).await.is_err(),
            "{name}"
        );
        assert!(ns.get(&"x".repeat(513)).await.is_err(), "{name}");
    }
}

#[tokio::test]
async fn namespaces_are_separate() {
    for (name, backend, _) in backends("separate") {
        let a = Namespace::new(backend.clone(), "a");
        let b = Namespace::new(backend, "b");
        a.put("k", b"from a".to_vec(), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(b.get("k").await.unwrap(), None, "{name}");
        b.put("k2", b"from b".to_vec(), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(names(&a, ListOptions::default()).await.0, ["k"], "{name}");
        assert_eq!(names(&b, ListOptions::default()).await.0, ["k2"], "{name}");
    }
}

#[tokio::test]
async fn expiry_is_immediate() {
    for (name, backend, clock) in backends("expiry") {
        let ns = Namespace::new(backend, "ns");
        ns.put("short", b"1".to_vec(), ttl(60.0)).await.unwrap();
        ns.put("long", b"2".to_vec(), ttl(600.0)).await.unwrap();
        ns.put("forever", b"3".to_vec(), PutOptions::default())
            .await
            .unwrap();
        let e = ns.get("short").await.unwrap().unwrap();
        assert!(e.expiration.is_some(), "{name}");
        clock.advance(59);
        assert!(ns.get("short").await.unwrap().is_some(), "{name}");
        clock.advance(1);
        assert_eq!(
            ns.get("short").await.unwrap(),
            None,
            "{name}: expired at its second"
        );
        assert_eq!(
            names(&ns, ListOptions::default()).await.0,
            ["forever", "long"],
            "{name}"
        );
        let many = ns.get_many(&["short".into(), "long".into()]).await.unwrap();
        assert!(many[0].is_none() && many[1].is_some(), "{name}");
    }
}

#[tokio::test]
async fn list_order_prefix_and_cursor_under_writes() {
    for (name, backend, _) in backends("list") {
        let ns = Namespace::new(backend, "ns");
        // Byte order, not character order: "Z" < "a" < "é".
        for key in ["b", "a", "é", "Z", "ab", "a/1", "a/2"] {
            ns.put(key, key.as_bytes().to_vec(), PutOptions::default())
                .await
                .unwrap();
        }
        let (all, complete, cursor) = names(&ns, ListOptions::default()).await;
        assert_eq!(all, ["Z", "a", "a/1", "a/2", "ab", "b", "é"], "{name}");
        assert!(complete && cursor.is_none(), "{name}");
        let (prefixed, ..) = names(
            &ns,
            ListOptions {
                prefix: Some("a/".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(prefixed, ["a/1", "a/2"], "{name}");

        // Page by 2 while inserting before and after the cursor and deleting ahead of it.
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut round = 0;
        loop {
            let (page, complete, next) = names(
                &ns,
                ListOptions {
                    limit: Some(2.0),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await;
            seen.extend(page);
            if round == 0 {
                ns.put("A", vec![], PutOptions::default()).await.unwrap(); // behind: not seen
                ns.put("c", vec![], PutOptions::default()).await.unwrap(); // ahead: seen
                ns.delete("ab").await.unwrap(); // ahead: not seen
            }
            round += 1;
            if complete {
                assert!(next.is_none(), "{name}");
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, ["Z", "a", "a/1", "a/2", "b", "c", "é"], "{name}");
        // An exactly full last page says it is complete (no empty extra page).
        let page = ns
            .list(ListOptions {
                prefix: Some("a/".into()),
                limit: Some(2.0),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.list_complete, "{name}");
        assert!(
            ns.list(ListOptions {
                cursor: Some("garbage!".into()),
                ..Default::default()
            })
            .await
            .is_err()
        );
    }
}

#[tokio::test]
async fn redb_survives_reopen_and_purges() {
    let path = temp_file("reopen");
    let clock = ManualClock::frozen();
    let options = RedbOptions {
        clock: Arc::new(clock.clone()),
        ..Default::default()
    };
    {
        let backend = Arc::new(RedbBackend::open(&path, options.clone()).unwrap());
        // A second open of a file in use is refused with a clear error.
        let err = RedbBackend::open(&path, options.clone()).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
        let ns = Namespace::new(backend.clone(), "ns");
        ns.put("keep", b"v".to_vec(), PutOptions::default())
            .await
            .unwrap();
        ns.put("gone", b"v".to_vec(), ttl(60.0)).await.unwrap();
        ns.put("moved", b"v".to_vec(), ttl(60.0)).await.unwrap();
        // Re-put without TTL: its expiry index row must go too.
        ns.put("moved", b"v".to_vec(), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(backend.raw_counts().unwrap(), (3, 1));
    }
    let backend = Arc::new(RedbBackend::open(&path, options).unwrap());
    let ns = Namespace::new(backend.clone(), "ns");
    assert_eq!(ns.get("keep").await.unwrap().unwrap().value, b"v");
    assert_eq!(backend.purge_now().unwrap(), 0);
    clock.advance(61);
    assert_eq!(ns.get("gone").await.unwrap(), None);
    assert_eq!(
        backend.raw_counts().unwrap(),
        (3, 1),
        "invisible before purge"
    );
    assert_eq!(backend.purge_now().unwrap(), 1);
    assert_eq!(backend.raw_counts().unwrap(), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_group_commits_concurrent_writes() {
    let backend = Arc::new(RedbBackend::open(&temp_file("group"), RedbOptions::default()).unwrap());
    let ns = Namespace::new(backend.clone(), "ns");
    let mut tasks = Vec::new();
    for i in 0..400 {
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            ns.put(&format!("k{i:04}"), vec![1; 100], PutOptions::default())
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    use std::sync::atomic::Ordering::Relaxed;
    let stats = backend.stats();
    let (commits, writes) = (stats.commits.load(Relaxed), stats.writes.load(Relaxed));
    assert_eq!(writes, 400);
    assert!(
        commits < 400,
        "400 concurrent puts took {commits} commits: no batching"
    );
    assert_eq!(
        ns.list(ListOptions::default()).await.unwrap().keys.len(),
        400
    );
}

/// A write that would take a namespace past the quota fails alone; shrinking writes and
/// deletes always pass and make room; other namespaces are unaffected; the count survives a
/// reopen, and a file without one (written before usage was kept) is counted when opened.
#[tokio::test]
async fn redb_quota_counts_each_namespace() {
    let file = temp_file("quota");
    let options = RedbOptions {
        namespace_quota: Some(10_000),
        ..Default::default()
    };
    let backend = Arc::new(RedbBackend::open(&file, options.clone()).unwrap());
    let a = Namespace::new(backend.clone(), "a");
    let b = Namespace::new(backend.clone(), "b");
    let put = |ns: &Namespace, key: &'static str, len: usize| {
        let ns = ns.clone();
        async move { ns.put(key, vec![7; len], PutOptions::default()).await }
    };
    put(&a, "one", 6000).await.unwrap();
    let err = put(&a, "two", 6000).await.unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(
        err.to_string()
            .contains("413 namespace storage quota of 10000 bytes exceeded"),
        "{err}"
    );
    assert_eq!(a.get("two").await.unwrap(), None);
    // Another namespace has its own quota.
    put(&b, "two", 6000).await.unwrap();
    // Shrinking the first makes room for the second.
    put(&a, "one", 100).await.unwrap();
    put(&a, "two", 6000).await.unwrap();
    let used = backend.usage("a").unwrap();
    assert!((6100..6200).contains(&used), "{used}");
    a.delete("two").await.unwrap();
    let after_delete = backend.usage("a").unwrap();
    assert!((100..200).contains(&after_delete), "{after_delete}");
    drop((a, b));
    drop(backend);

    // The count is kept in the file.
    let backend = RedbBackend::open(&file, options.clone()).unwrap();
    assert_eq!(backend.usage("a").unwrap(), after_delete);
    let b_used = backend.usage("b").unwrap();
    drop(backend);
    // A file with no count (as written before there was one) is counted when opened.
    {
        let db = redb::Database::open(&file).unwrap();
        let txn = db.begin_write().unwrap();
        let usage: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("kv_usage");
        assert!(txn.delete_table(usage).unwrap());
        txn.commit().unwrap();
    }
    let backend = RedbBackend::open(&file, options).unwrap();
    assert_eq!(backend.usage("a").unwrap(), after_delete);
    assert_eq!(backend.usage("b").unwrap(), b_used);
}

/// One namespace's burst of large writes does not hold up another's small one: each commit
/// takes writes from every namespace in turn. Before, the writer took them first come, first
/// served, and a small put waited behind the whole burst (it was in the burst's last commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_writer_is_fair_between_namespaces() {
    use std::sync::atomic::Ordering::Relaxed;
    let file = temp_file("fair");
    let backend = Arc::new(RedbBackend::open(&file, RedbOptions::default()).unwrap());
    let big = Namespace::new(backend.clone(), "big");
    let small = Namespace::new(backend.clone(), "small");
    // 32 × 8 MiB takes four commits at least (a batch stops at 64 MiB).
    let mut burst = Vec::new();
    for i in 0..32 {
        let big = big.clone();
        let b = backend.clone();
        burst.push(async move {
            big.put(&format!("k{i}"), vec![1; 8 << 20], PutOptions::default())
                .await
                .unwrap();
            b.stats().commits.load(Relaxed)
        });
    }
    let b = backend.clone();
    let victim = async move {
        small
            .put("k", vec![1; 10], PutOptions::default())
            .await
            .unwrap();
        b.stats().commits.load(Relaxed)
    };
    // Every put is queued, in this order, when the join first polls them. The small one goes
    // into the first or second commit (read here at most one commit late).
    let (burst_commits, victim_commit) = tokio::join!(futures::future::join_all(burst), victim);
    let last_of_burst = *burst_commits.iter().max().unwrap();
    eprintln!("small put durable by commit {victim_commit}; the burst's last by {last_of_burst}");
    // The file holds half a GiB: give the space back before asserting.
    drop(big);
    drop(backend);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
    assert!(last_of_burst >= 4, "the burst took {last_of_burst} commits");
    assert!(
        victim_commit < last_of_burst,
        "the small put waited for the burst's last commit ({victim_commit} of {last_of_burst})"
    );
}
