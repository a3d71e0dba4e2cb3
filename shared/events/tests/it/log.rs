use std::collections::HashSet;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_events::{
    Cursor, Filter, Hub, NewEvent, Publisher, PublisherOptions, publish_in, read_after,
};
use gathering_testkit::TestDb;
use serde_json::json;

async fn all(pool: &gathering_db::Pool, filter: &Filter) -> Vec<gathering_events::Event> {
    let client = pool.get().await.unwrap();
    read_after(&client, Cursor::START, filter, 10_000)
        .await
        .unwrap()
}

/// Events become readable once every older transaction of the cluster has ended (other
/// tests' included), so a reader polls.
async fn all_n(
    pool: &gathering_db::Pool,
    filter: &Filter,
    n: usize,
) -> Vec<gathering_events::Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = all(pool, filter).await;
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_become_visible_with_their_transaction() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    publish_in(
        &tx,
        &[NewEvent::new("task.created", json!({"id": 1})).topic("tasks")],
    )
    .await
    .unwrap();
    assert!(all(&pool, &Filter::default()).await.is_empty());
    tx.rollback().await.unwrap();
    assert!(
        all(&pool, &Filter::default()).await.is_empty(),
        "rolled back with the change"
    );
    let tx = client.transaction().await.unwrap();
    let ids = publish_in(
        &tx,
        &[
            NewEvent::new("task.created", json!({"id": 2})).topic("tasks"),
            NewEvent::new("agent.busy", json!({"id": 3})).topic("agents:3"),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let events = all_n(&pool, &Filter::default(), 2).await;
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    let agents = all(
        &pool,
        &Filter {
            topics: vec!["agents".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].kind, "agent.busy");
    let kinds = all(
        &pool,
        &Filter {
            kinds: vec!["task.created".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kinds.len(), 1);
}

#[tokio::test]
async fn a_reader_never_skips_an_event_whose_transaction_commits_late() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let mut slow = pool.get().await.unwrap();
    let slow_tx = slow.transaction().await.unwrap();
    // The slow transaction takes the lower id…
    let slow_ids = publish_in(&slow_tx, &[NewEvent::new("slow", json!({}))])
        .await
        .unwrap();
    // …a later one takes a higher id and commits first.
    let fast = pool.get().await.unwrap();
    let fast_ids = publish_in(&fast, &[NewEvent::new("fast", json!({}))])
        .await
        .unwrap();
    assert!(fast_ids[0] > slow_ids[0]);

    let seen = all(&pool, &Filter::default()).await;
    assert!(
        seen.is_empty(),
        "nothing is final while the older transaction runs: {seen:?}"
    );
    slow_tx.commit().await.unwrap();
    let seen = all_n(&pool, &Filter::default(), 2).await;
    let kinds: Vec<_> = seen.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["slow", "fast"]);
}

#[tokio::test]
async fn heavy_hub_delivers_every_event_in_order_across_a_lost_connection() {
    let db = TestDb::new().await;
    let pool = db.pool(8);
    let shutdown = Shutdown::new();
    let hub = Hub::start(pool.clone(), &db.url, 1024, shutdown.clone())
        .await
        .unwrap();
    let mut rx = hub.subscribe();

    let mut writers = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..250 {
                let client = pool.get().await.unwrap();
                publish_in(&client, &[NewEvent::new("tick", json!({"w": w, "i": i}))])
                    .await
                    .unwrap();
            }
        }));
    }
    // Midway, kill the hub's LISTEN connection: it reconnects and catches up by reading.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'gathering-listen' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    for w in writers {
        w.await.unwrap();
    }

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 1000 {
        let batch = tokio::time::timeout_at(deadline.into(), rx.recv())
            .await
            .expect("all events arrive")
            .unwrap();
        got.extend(batch.iter().cloned());
    }
    let cursors: Vec<_> = got.iter().map(|e| e.cursor()).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "strictly in log order, no duplicates"
    );
    let unique: HashSet<_> = got
        .iter()
        .map(|e| (e.payload["w"].as_i64(), e.payload["i"].as_i64()))
        .collect();
    assert_eq!(unique.len(), 1000, "none lost");
    // Per writer, events arrive in the order they were written.
    for w in 0..4 {
        let seq: Vec<i64> = got
            .iter()
            .filter(|e| e.payload["w"] == w)
            .map(|e| e.payload["i"].as_i64().unwrap())
            .collect();
        assert_eq!(seq, (0..250).collect::<Vec<_>>());
    }
    shutdown.trigger();
}

#[tokio::test]
async fn without_notifications_the_hub_still_polls() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let shutdown = Shutdown::new();
    let hub = Hub::start(pool.clone(), &db.url, 64, shutdown.clone())
        .await
        .unwrap();
    let mut rx = hub.subscribe();
    pool.get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO events.log (kind, payload) VALUES ('silent', '{}')",
            &[],
        )
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch[0].kind, "silent");
    shutdown.trigger();
}

#[tokio::test]
async fn coalesced_events_drop_identical_ones_and_write_in_batches() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let shutdown = Shutdown::new();
    let publisher = Publisher::start(
        pool.clone(),
        PublisherOptions {
            window: Duration::from_millis(200),
            max_pending: 1000,
            ..PublisherOptions::default()
        },
        shutdown.clone(),
    );
    for _ in 0..100 {
        assert!(publisher.publish_coalesced(NewEvent::new(
            "task.progress",
            json!({"task": 1, "pct": 50})
        )));
    }
    for pct in [60, 70] {
        publisher.publish_coalesced(NewEvent::new(
            "task.progress",
            json!({"task": 1, "pct": pct}),
        ));
    }
    let events = all_n(&pool, &Filter::default(), 3).await;
    let pcts: Vec<_> = events
        .iter()
        .map(|e| e.payload["pct"].as_i64().unwrap())
        .collect();
    assert_eq!(pcts, vec![50, 60, 70]);
    let xids: HashSet<_> = events.iter().map(|e| e.xid).collect();
    assert_eq!(xids.len(), 1, "one window, one statement");
    assert!(publisher.publish_coalesced(NewEvent::new("task.progress", json!({"pct": 50}))));
    shutdown.trigger();
}

#[tokio::test]
async fn retention_bounds_age_and_count() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO events.log (kind, created_at) \
             SELECT 'old', now() - interval '10 days' FROM generate_series(1, 5)",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO events.log (kind) SELECT 'new' FROM generate_series(1, 20)",
            &[],
        )
        .await
        .unwrap();
    let deleted =
        gathering_events::retention::purge(&pool, Duration::from_secs(7 * 86400), 10, 1000)
            .await
            .unwrap();
    assert_eq!(deleted, 15);
    let left = all_n(&pool, &Filter::default(), 10).await;
    assert_eq!(left.len(), 10);
    assert!(left.iter().all(|e| e.kind == "new"));
}
