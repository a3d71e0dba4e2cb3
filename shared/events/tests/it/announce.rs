//! Quiet publishing and the coalesced notifications that follow commits.

use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::listen::ListenerEvent;
use gathering_events::{
    Announcer, CHANNEL, Hub, NewEvent, Publisher, PublisherOptions, publish_quiet_in,
};
use gathering_testkit::TestDb;
use serde_json::json;

/// The next notification on `events`, waiting at most 10 s.
async fn next_payload(listener: &mut gathering_db::Listener) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), listener.recv()).await {
            Ok(Some(ListenerEvent::Notification(n))) => return Some(n.payload),
            Ok(Some(ListenerEvent::Reconnected)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn quiet_events_are_announced_once_committed_with_the_newest_id() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let shutdown = Shutdown::new();
    let mut listener = gathering_db::Listener::start(&db.url, &[CHANNEL], shutdown.clone())
        .await
        .unwrap();
    let announcer = Announcer::new(pool.clone(), Duration::from_millis(50));
    assert!(!announcer.inline());

    // A quiet publish notifies nobody by itself.
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let ids = publish_quiet_in(
        &tx,
        &[NewEvent::new("pipeline_node.completed", json!({"n": 1}))],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    client
        .execute("SELECT pg_notify($1, 'marker')", &[&CHANNEL])
        .await
        .unwrap();
    assert_eq!(next_payload(&mut listener).await.as_deref(), Some("marker"));
    // The announcement after the commit does, carrying the id.
    announcer.announce(ids[0]);
    assert_eq!(next_payload(&mut listener).await, Some(ids[0].to_string()));

    // A burst within one window: folded into one trailing notification with the newest id.
    let mut newest = 0;
    for i in 0..50 {
        let ids = publish_quiet_in(&client, &[NewEvent::new("burst", json!({"i": i}))])
            .await
            .unwrap();
        newest = ids[0];
        announcer.announce(newest);
    }
    let mut payloads = Vec::new();
    while let Some(p) = next_payload(&mut listener).await {
        payloads.push(p.parse::<i64>().unwrap());
        if *payloads.last().unwrap() == newest {
            break;
        }
    }
    assert_eq!(
        payloads.last(),
        Some(&newest),
        "the newest id is always announced"
    );
    assert!(
        payloads.len() < 50,
        "coalesced, not one per event: {payloads:?}"
    );
    shutdown.trigger();
}

#[tokio::test]
async fn a_zero_window_keeps_notifying_in_the_transaction() {
    let db = TestDb::new().await;
    let publisher = Publisher::start(
        db.pool(2),
        PublisherOptions {
            notify_window: Duration::ZERO,
            ..PublisherOptions::default()
        },
        Shutdown::new(),
    );
    assert!(publisher.announcer().inline());
    assert!(
        !Publisher::start(db.pool(2), PublisherOptions::default(), Shutdown::new())
            .announcer()
            .inline()
    );
}

#[tokio::test]
async fn a_hub_delivers_announced_quiet_events() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let shutdown = Shutdown::new();
    let hub = Hub::start(pool.clone(), &db.url, 16, shutdown.clone())
        .await
        .unwrap();
    let mut rx = hub.subscribe();
    let announcer = Announcer::new(pool.clone(), Duration::from_millis(2));
    let client = pool.get().await.unwrap();
    let mut want = Vec::new();
    for i in 0..20 {
        let ids = publish_quiet_in(&client, &[NewEvent::new("state", json!({"i": i}))])
            .await
            .unwrap();
        announcer.announce(ids[0]);
        want.extend(ids);
    }
    let mut got = Vec::new();
    while got.len() < want.len() {
        let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("delivered")
            .unwrap();
        got.extend(batch.iter().map(|e| e.id));
    }
    assert_eq!(got, want, "every state change, in order");
    shutdown.trigger();
}
