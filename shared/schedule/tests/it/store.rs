//! The run/job/event writes on a real database.

use chrono::{DateTime, Utc};
use gathering_schedule::TriggeredBy;
use gathering_schedule::store::{self, DISPATCH_KIND, DISPATCH_QUEUE, NewRun, trigger_now};
use gathering_testkit::TestDb;

async fn schedule(db: &TestDb) -> i64 {
    let client = db.pool(1).get().await.unwrap();
    client
        .execute("INSERT INTO agent.agents (name) VALUES ('a')", &[])
        .await
        .unwrap();
    client
        .query_one(
            "INSERT INTO circle.scheduled_actions (agent_id, name, schedule_type, cron_expression, next_run_at) \
             SELECT id, 's', 'cron', '* * * * *', now() FROM agent.agents LIMIT 1 RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn run(action: i64, due: Option<DateTime<Utc>>, event: Option<i64>, skipped: bool) -> NewRun {
    NewRun {
        action_id: action,
        run_number: 1,
        scheduled_for: due,
        event_id: event,
        triggered_by: TriggeredBy::Scheduler,
        skipped,
    }
}

#[tokio::test]
async fn a_due_time_or_an_event_fires_once_with_one_job() {
    let db = TestDb::new().await;
    let id = schedule(&db).await;
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    let due = crate::at("2030-01-01T00:00:00Z");
    let first = store::fire(&client, &[run(id, Some(due), None, false)], "test")
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // The same due time again (a second instance, a replay): nothing new.
    let again = store::fire(
        &client,
        &[
            run(id, Some(due), None, false),
            run(id, None, Some(42), false),
        ],
        "test",
    )
    .await
    .unwrap();
    assert_eq!(again.len(), 1, "only the event run is new");
    assert_eq!(again[0].event_id, Some(42));
    let replay = store::fire(&client, &[run(id, None, Some(42), false)], "test")
        .await
        .unwrap();
    assert!(replay.is_empty(), "one run per event");

    let jobs: Vec<(String, String, String)> = client
        .query(
            "SELECT queue, kind, unique_key FROM queue.jobs ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|j| j.0 == DISPATCH_QUEUE && j.1 == DISPATCH_KIND)
    );
    assert_eq!(jobs[1].2, format!("scheduled_action:{id}:event:42"));
    let events: i64 = client
        .query_one(
            "SELECT count(*) FROM events.log WHERE kind = 'scheduled_action.triggered' \
             AND topics @> ARRAY['scheduled_actions:' || $1::text]",
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 2);
}

#[tokio::test]
async fn a_skipped_run_is_recorded_without_a_job() {
    let db = TestDb::new().await;
    let id = schedule(&db).await;
    let client = db.pool(1).get().await.unwrap();
    let due = crate::at("2030-01-01T00:00:00Z");
    let out = store::fire(&client, &[run(id, Some(due), None, true)], "test")
        .await
        .unwrap();
    assert!(out[0].skipped);
    let row = client
        .query_one(
            "SELECT status::text, result_summary FROM circle.scheduled_action_runs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "cancelled");
    assert!(row.get::<_, String>(1).starts_with("skipped"));
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM queue.jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 0);
    let skipped: i64 = client
        .query_one(
            "SELECT count(*) FROM events.log WHERE kind = 'scheduled_action.skipped'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(skipped, 1);
}

#[tokio::test]
async fn trigger_now_counts_a_manual_run() {
    let db = TestDb::new().await;
    let id = schedule(&db).await;
    let pool = db.pool(1);
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let r = trigger_now(&tx, id, "test").await.unwrap().unwrap();
    assert_eq!((r.run_number, r.triggered_by.as_str()), (1, "manual"));
    assert!(trigger_now(&tx, id + 1000, "test").await.unwrap().is_none());
    tx.commit().await.unwrap();
    let r = trigger_now(&client, id, "test").await.unwrap().unwrap();
    assert_eq!(r.run_number, 2);
    let (count, last): (i32, Option<DateTime<Utc>>) = client
        .query_one(
            "SELECT execution_count, last_run_at FROM circle.scheduled_actions WHERE id = $1",
            &[&id],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(count, 2);
    assert!(last.is_some());
}

#[tokio::test]
async fn a_finished_pipeline_run_or_task_finishes_its_run() {
    let db = TestDb::new().await;
    let id = schedule(&db).await;
    let client = db.pool(1).get().await.unwrap();
    let pipeline_run: i64 = client
        .query_one(
            "WITH p AS (INSERT INTO circle.pipelines (name, status) VALUES ('p', 'active') RETURNING id) \
             INSERT INTO circle.pipeline_runs (pipeline_id) SELECT id FROM p RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let task: i64 = client
        .query_one(
            "INSERT INTO circle.background_tasks (agent_id, goal) SELECT agent_id, 'g' \
             FROM circle.scheduled_actions WHERE id = $1 RETURNING id",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO circle.scheduled_action_runs (scheduled_action_id, run_number, status, pipeline_run_id, started_at) \
             VALUES ($1, 1, 'running', $2, now()), ($1, 2, 'running', NULL, now())",
            &[&id, &pipeline_run],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE circle.scheduled_action_runs SET background_task_id = $1 WHERE run_number = 2",
            &[&task],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE circle.pipeline_runs SET status = 'completed', completed_at = now() WHERE id = $1",
            &[&pipeline_run],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE circle.background_tasks SET status = 'failed', error_message = 'Too many errors', \
             current_step = 7 WHERE id = $1",
            &[&task],
        )
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>, i32)> = client
        .query(
            "SELECT status::text, error_message, steps_executed FROM circle.scheduled_action_runs ORDER BY run_number",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows[0].0, "completed");
    assert_eq!(
        rows[1],
        ("failed".into(), Some("Too many errors".into()), 7)
    );
    let kinds: Vec<String> = client
        .query("SELECT kind FROM events.log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        vec!["scheduled_action.completed", "scheduled_action.failed"]
    );
}
