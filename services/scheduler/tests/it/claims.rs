//! Time schedules: exactly once across instances, skipped runs, limits, wake-ups, missed runs.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use gathering_testkit::TestDb;

use crate::support::{Cron, agent, eventually, runs, sleep_until, start, whole_second_after};

#[tokio::test]
async fn heavy_three_instances_fire_every_due_time_of_every_schedule_once() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let agent = agent(&pool).await;
    let t0 = whole_second_after(&pool, Duration::from_millis(1500)).await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        let mut c = Cron::every_second(agent);
        c.start = Some(t0);
        c.end = Some(t0 + TimeDelta::seconds(3));
        ids.push(c.insert(&pool).await);
    }
    let instances = [
        start(&db, &[]).await,
        start(&db, &[]).await,
        start(&db, &[]).await,
    ];
    sleep_until(t0 + TimeDelta::milliseconds(4500)).await;

    let client = pool.get().await.unwrap();
    let per_schedule: Vec<(i64, i64, i64)> = client
        .query(
            "SELECT scheduled_action_id, count(*), count(DISTINCT scheduled_for) \
             FROM circle.scheduled_action_runs GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(per_schedule.len(), 50);
    for (id, n, distinct) in &per_schedule {
        assert_eq!(
            (*n, *distinct),
            (4, 4),
            "schedule {id}: 4 due times, each once"
        );
    }
    let jobs: (i64, i64) = client
        .query_one(
            "SELECT count(*), count(DISTINCT unique_key) FROM queue.jobs WHERE kind = 'scheduled_action.dispatch'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(jobs, (200, 200), "one dispatch job per run");
    let fired: u64 = instances
        .iter()
        .map(|i| {
            i.started
                .stats
                .fired
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(fired, 200);
    let expired: i64 = client
        .query_one(
            "SELECT count(*) FROM circle.scheduled_actions WHERE status = 'expired' AND next_run_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(expired, 50, "past their end date");
    for i in instances {
        i.stop().await;
    }
}

#[tokio::test]
async fn a_due_time_while_the_previous_run_is_live_is_recorded_as_skipped() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let t0 = whole_second_after(&pool, Duration::from_millis(800)).await;
    let mut c = Cron::every_second(agent);
    c.allow_concurrent = false;
    c.start = Some(t0);
    c.end = Some(t0 + TimeDelta::seconds(2));
    let id = c.insert(&pool).await;
    // No executor: the first run stays pending, so the next two find it live.
    let s = start(&db, &[]).await;
    sleep_until(t0 + TimeDelta::milliseconds(2600)).await;
    let r = runs(&pool, id).await;
    let statuses: Vec<&str> = r.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(statuses, vec!["pending", "cancelled", "cancelled"]);
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE result_summary LIKE 'skipped%'), \
             (SELECT count(*) FROM queue.jobs), \
             (SELECT execution_count FROM circle.scheduled_actions WHERE id = $1) \
             FROM circle.scheduled_action_runs",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2, "both skips say why");
    assert_eq!(row.get::<_, i64>(1), 1, "no job for a skipped run");
    assert_eq!(row.get::<_, i32>(2), 1, "skips are not executions");
    s.stop().await;
}

#[tokio::test]
async fn max_executions_ends_the_schedule() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let mut c = Cron::every_second(agent);
    c.max_executions = Some(2);
    let id = c.insert(&pool).await;
    let s = start(&db, &[]).await;
    let client = pool.get().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            client
                .query_one(
                    "SELECT status::text = 'expired' FROM circle.scheduled_actions WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get(0)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(runs(&pool, id).await.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn a_sleeping_scheduler_wakes_when_a_schedule_becomes_due_earlier() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let mut c = Cron::every_second(agent);
    c.cron = "0 0 * * *";
    let id = c.insert(&pool).await;
    // Backstop sleep of a minute: only the notification can wake it in time.
    let s = start(&db, &[("SCHEDULER_MAX_SLEEP_MS", "60000")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "UPDATE circle.scheduled_actions SET cron_expression = '* * * * * *', \
             next_run_at = date_trunc('second', now()) + interval '1 second' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let fired = eventually(Duration::from_millis(2500), || async {
        !runs(&pool, id).await.is_empty()
    })
    .await;
    assert!(fired, "the change woke the scheduler");
    // A brand-new schedule wakes it too.
    let other = Cron::every_second(agent).insert(&pool).await;
    assert!(
        eventually(Duration::from_millis(2500), || async {
            !runs(&pool, other).await.is_empty()
        })
        .await
    );
    s.stop().await;
}

#[tokio::test]
async fn heavy_missed_runs_follow_each_policy() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    // Five due times (t0 … t0+4 s) pass while no scheduler runs.
    let t0 = whole_second_after(&pool, Duration::from_millis(300)).await;
    let mut ids = Vec::new();
    for policy in ["skip", "run_once", "catch_up"] {
        let mut c = Cron::every_second(agent);
        c.start = Some(t0);
        c.end = Some(t0 + TimeDelta::seconds(4));
        c.policy = policy;
        ids.push(c.insert(&pool).await);
    }
    sleep_until(t0 + TimeDelta::milliseconds(5200)).await;
    let s = start(&db, &[]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let skip = runs(&pool, ids[0]).await;
    let once = runs(&pool, ids[1]).await;
    let all = runs(&pool, ids[2]).await;
    assert_eq!(skip.len(), 0, "skip: nothing for the missed due times");
    assert_eq!(once.len(), 1, "run_once: one run");
    assert_eq!(
        once[0].0,
        Some(t0 + TimeDelta::seconds(4)),
        "for the latest due time"
    );
    assert_eq!(all.len(), 5, "catch_up: every missed due time");
    let dues: HashSet<_> = all.iter().map(|r| r.0).collect();
    assert_eq!(dues.len(), 5);
    assert!(once.iter().chain(&all).all(|r| r.2 == "recovery"));
    let client = pool.get().await.unwrap();
    let missed: Vec<i64> = client
        .query(
            "SELECT (payload->>'missed')::int8 FROM events.log WHERE kind = 'scheduled_action.missed' \
             ORDER BY (payload->>'action_id')::int8",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(missed, vec![5, 4], "what was not run is said");
    s.stop().await;
}

#[tokio::test]
async fn a_schedule_that_no_longer_parses_is_disabled_not_retried_forever() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let id = Cron::every_second(agent).insert(&pool).await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "UPDATE circle.scheduled_actions SET cron_expression = '61 * * * *', next_run_at = now() WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let s = start(&db, &[]).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            client
                .query_one(
                    "SELECT status::text = 'disabled' FROM circle.scheduled_actions WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get(0)
        })
        .await
    );
    let reason: String = client
        .query_one(
            "SELECT payload->>'error' FROM events.log WHERE kind = 'scheduled_action.disabled'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("minute field: 61"), "{reason}");
    assert!(runs(&pool, id).await.is_empty());
    s.stop().await;
}
