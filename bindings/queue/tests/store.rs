//! The queue store's contract, on both backends: FIFO delivery, attempts, retries with delay,
//! dead-lettering, counts; and for the redb file, what survives a reopen.

use std::time::Duration;

use edge_queue::{ContentType, NewMessage, QueueBackend, QueueStore, Settle};

fn msg(body: &str) -> NewMessage {
    NewMessage {
        body: body.as_bytes().to_vec(),
        content_type: ContentType::Text,
        delay_secs: 0,
    }
}

fn bodies(messages: &[edge_queue::Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.body.clone()).unwrap())
        .collect()
}

async fn contract(store: &dyn QueueBackend) {
    store
        .send("jobs", vec![msg("a"), msg("b"), msg("c")])
        .await
        .unwrap();
    assert_eq!(store.readiness("jobs").ready, 3);
    let first = store.lease("jobs", 2).await.unwrap();
    assert_eq!(bodies(&first), ["a", "b"]);
    assert!(first.iter().all(|m| m.attempts == 1 && m.id.len() == 32));
    assert_ne!(first[0].id, first[1].id);
    let stats = store.stats();
    assert_eq!((stats[0].ready, stats[0].in_flight), (1, 2));

    // a is done; b comes back after the rest, with its attempt counted.
    store
        .settle(
            "jobs",
            vec![
                (first[0].seq, Settle::Ack),
                (first[1].seq, Settle::Retry { delay_secs: 0 }),
            ],
        )
        .await
        .unwrap();
    let next = store.lease("jobs", 10).await.unwrap();
    assert_eq!(bodies(&next), ["b", "c"]);
    assert_eq!(next[0].attempts, 2);

    // A delayed retry waits; dead-lettering moves the message, attempts reset.
    store
        .settle(
            "jobs",
            vec![
                (
                    next[0].seq,
                    Settle::DeadLetter {
                        queue: "jobs-dlq".into(),
                    },
                ),
                (next[1].seq, Settle::Retry { delay_secs: 1 }),
            ],
        )
        .await
        .unwrap();
    let ready = store.readiness("jobs");
    assert_eq!(ready.ready, 0);
    assert!(ready.next_delayed_ms.is_some());
    assert_eq!(bodies(&store.peek("jobs", 10).await.unwrap()), ["c"]);
    let dead = store.lease("jobs-dlq", 10).await.unwrap();
    assert_eq!(bodies(&dead), ["b"]);
    assert_eq!(dead[0].attempts, 1);
    store
        .settle("jobs-dlq", vec![(dead[0].seq, Settle::Drop)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = store.lease("jobs", 10).await.unwrap();
    assert_eq!(bodies(&later), ["c"]);
    assert_eq!(later[0].attempts, 2);
    store
        .settle("jobs", vec![(later[0].seq, Settle::Ack)])
        .await
        .unwrap();
    assert!(
        store
            .stats()
            .iter()
            .all(|s| s.ready + s.delayed + s.in_flight == 0)
    );
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&QueueStore::memory()).await;
}

#[tokio::test]
async fn redb_store_keeps_the_contract() {
    let dir = scratch("contract");
    contract(&QueueStore::open(&QueueStore::file_in(&dir), None).unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_reopened_file_has_every_unacked_message_waiting() {
    let dir = scratch("reopen");
    let path = QueueStore::file_in(&dir);
    {
        let store = QueueStore::open(&path, None).unwrap();
        store
            .send("q", vec![msg("1"), msg("2"), msg("3")])
            .await
            .unwrap();
        let taken = store.lease("q", 3).await.unwrap();
        store
            .settle("q", vec![(taken[0].seq, Settle::Ack)])
            .await
            .unwrap();
        // 2 and 3 are in flight when the process "dies".
        assert!(matches!(
            QueueStore::open(&path, None),
            Err(edge_binding::StoreError::InUse { .. })
        ));
    }
    // The writer thread holds the file until its channel closes; give it a moment.
    let store = reopen(&path).await;
    let again = store.lease("q", 10).await.unwrap();
    assert_eq!(bodies(&again), ["2", "3"]);
    // Order continues after a reopen.
    store.send("q", vec![msg("4")]).await.unwrap();
    assert_eq!(bodies(&store.lease("q", 10).await.unwrap()), ["4"]);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn reopen(path: &std::path::Path) -> QueueStore {
    for _ in 0..100 {
        match QueueStore::open(path, None) {
            Ok(store) => return store,
            Err(edge_binding::StoreError::InUse { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{} stayed in use", path.display());
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-queue-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The quota these tests give: two messages' overhead (64 bytes each) and ten body bytes.
const QUOTA: u64 = 2 * 64 + 10;

async fn quota(store: &dyn QueueBackend) {
    store.send("q", vec![msg("12345")]).await.unwrap();
    let e = store.send("q", vec![msg("123456")]).await.unwrap_err();
    assert!(e.to_string().contains("queue-quota-mb"), "{e}");
    // Another queue has its own bound.
    store.send("other", vec![msg("1234567890")]).await.unwrap();
    let taken = store.lease("q", 1).await.unwrap();
    store
        .settle("q", vec![(taken[0].seq, Settle::Ack)])
        .await
        .unwrap();
    store.send("q", vec![msg("123456")]).await.unwrap();
    assert_eq!(
        store.stats().iter().find(|s| s.queue == "q").unwrap().bytes,
        64 + 6
    );
    // A full dead-letter queue does not grow: the message waits and is tried again later.
    store.send("d", vec![msg("12345")]).await.unwrap();
    let taken = store.lease("q", 1).await.unwrap();
    let dead = Settle::DeadLetter { queue: "d".into() };
    store.settle("q", vec![(taken[0].seq, dead)]).await.unwrap();
    let q = store.readiness("q");
    assert_eq!(q.ready, 0);
    assert!(q.next_delayed_ms.is_some());
    assert_eq!(store.peek("d", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_queue_holds_at_most_its_quota() {
    quota(&QueueStore::memory().with_quota(Some(QUOTA))).await;
    let dir = scratch("quota");
    quota(&QueueStore::open(&QueueStore::file_in(&dir), Some(QUOTA)).unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
