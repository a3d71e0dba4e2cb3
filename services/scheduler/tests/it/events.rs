//! Event schedules: once per matching event, across instances.

use std::time::Duration;

use gathering_events::{NewEvent, publish_in};
use gathering_testkit::TestDb;
use serde_json::json;

use crate::support::{agent, eventually, start};

/// How long the runs may take to appear. Events become readable once every older transaction
/// of the cluster has ended (the log's no-skip rule, see gathering-events), so while the whole
/// suite runs — other tests' transactions in other databases of the same cluster, on 2 loaded
/// cores — this is seconds, not milliseconds. What is asserted is the outcome, not the delay.
const SETTLE: Duration = Duration::from_secs(30);

async fn event_schedule(
    pool: &gathering_db::Pool,
    agent: i64,
    trigger: &str,
    filter: serde_json::Value,
    allow_concurrent: bool,
) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, event_trigger, \
             action_type, action_config, metadata, allow_concurrent) \
             VALUES ($1, 'on event', 'g', 'event', $2, 'run_task', '{}', $3, $4) RETURNING id",
            &[&agent, &trigger, &json!({"event_filter": filter}), &allow_concurrent],
        )
        .await
        .unwrap()
        .get(0)
}

async fn publish(pool: &gathering_db::Pool, kind: &str, payload: serde_json::Value) -> i64 {
    let client = pool.get().await.unwrap();
    publish_in(&client, &[NewEvent::new(kind, payload)])
        .await
        .unwrap()[0]
}

async fn event_runs(pool: &gathering_db::Pool, action: i64) -> Vec<(i64, String, String)> {
    pool.get()
        .await
        .unwrap()
        .query(
            "SELECT event_id, triggered_by, status::text FROM circle.scheduled_action_runs \
             WHERE scheduled_action_id = $1 ORDER BY event_id",
            &[&action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn each_matching_event_fires_once_across_instances() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let agent = agent(&pool).await;
    let before = publish(&pool, "pipeline_run.completed", json!({"pipeline_id": 3})).await;
    let id = event_schedule(
        &pool,
        agent,
        "pipeline_run.completed",
        json!({"pipeline_id": 3}),
        true,
    )
    .await;
    let a = start(&db, &[]).await;
    let b = start(&db, &[]).await;
    let mut expected = Vec::new();
    for i in 0..6 {
        expected.push(
            publish(
                &pool,
                "pipeline_run.completed",
                json!({"pipeline_id": 3, "run_id": i}),
            )
            .await,
        );
        publish(
            &pool,
            "pipeline_run.completed",
            json!({"pipeline_id": 4, "run_id": i}),
        )
        .await;
        publish(&pool, "pipeline_run.failed", json!({"pipeline_id": 3})).await;
    }
    let ok = eventually(SETTLE, || async {
        event_runs(&pool, id).await.len() >= expected.len()
    })
    .await;
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs = event_runs(&pool, id).await;
    let got: Vec<i64> = runs.iter().map(|r| r.0).collect();
    assert_eq!(
        got, expected,
        "one run per matching event, none for the earlier one ({before})"
    );
    assert!(runs.iter().all(|r| r.1 == "event" && r.2 == "pending"));
    let count: i32 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT execution_count FROM circle.scheduled_actions WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 6);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_event_schedule_is_not_fired_by_its_own_events_and_honours_allow_concurrent() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let agent = agent(&pool).await;
    // Fires on any schedule's trigger, but never on its own.
    let watcher =
        event_schedule(&pool, agent, "scheduled_action.triggered", json!({}), false).await;
    let s = start(&db, &[]).await;
    let other = event_schedule(&pool, agent, "custom.ping", json!({}), true).await;
    publish(&pool, "custom.ping", json!({})).await;
    publish(&pool, "custom.ping", json!({})).await;
    assert!(
        eventually(SETTLE, || async {
            event_runs(&pool, watcher).await.len() >= 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let watcher_runs = event_runs(&pool, watcher).await;
    assert_eq!(event_runs(&pool, other).await.len(), 2);
    assert_eq!(
        watcher_runs.len(),
        2,
        "fired by the other schedule's two runs, not by its own: {watcher_runs:?}"
    );
    // allow_concurrent off: the first run is still pending when the second event comes.
    let statuses: Vec<&str> = watcher_runs.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(statuses, vec!["pending", "cancelled"]);
    s.stop().await;
}
