//! The writes that fire a schedule, shared by the scheduler (due times, events) and the edge
//! (manual trigger): run rows, their dispatch jobs and their events, all inside the caller's
//! transaction so that a run exists exactly when its job and its event do.
//!
//! Run rows are unique per `(schedule, due time)` and per `(schedule, event)`; an insert that
//! meets an existing row does nothing, and no job is enqueued for it. Dispatch jobs carry a
//! unique key derived from the same pair, a second guard against firing twice.

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_events::NewEvent;
use gathering_queue::NewJob;
use serde_json::{Value, json};

use crate::error::ScheduleError;
use crate::policy::TriggeredBy;

/// Job kind an executor runs for each run.
pub const DISPATCH_KIND: &str = "scheduled_action.dispatch";
/// Queue of dispatch jobs.
pub const DISPATCH_QUEUE: &str = "scheduled";
/// Attempts of a dispatch job against infrastructure failures (database errors, an executor
/// lost mid-job). The schedule's own `retry_on_failure`/`max_retries` are separate.
pub const DISPATCH_ATTEMPTS: i32 = 5;
/// `NOTIFY` channel that wakes schedulers when a schedule may be due earlier than they planned
/// (sent by a trigger on `circle.scheduled_actions`, see migration V40).
pub const WAKE_CHANNEL: &str = "scheduled_actions";
/// Summary of a run recorded as skipped.
pub const SKIPPED_SUMMARY: &str = "skipped: the previous run was still running";

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub action_id: i64,
    pub run_number: i32,
    /// The due time it fulfils (time schedules).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The event it answers (event schedules).
    pub event_id: Option<i64>,
    pub triggered_by: TriggeredBy,
    /// Recorded, not run: `allow_concurrent` is off and the previous run is still running.
    /// Stored as status `cancelled` with [`SKIPPED_SUMMARY`].
    pub skipped: bool,
}

/// A run that was recorded.
#[derive(Debug, Clone)]
pub struct InsertedRun {
    pub id: i64,
    pub action_id: i64,
    pub run_number: i32,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub event_id: Option<i64>,
    pub triggered_by: String,
    pub skipped: bool,
}

const INSERT_RUNS_SQL: &str = "
INSERT INTO circle.scheduled_action_runs
    (scheduled_action_id, run_number, scheduled_for, event_id, triggered_by, status,
     result_summary, completed_at)
SELECT t.action_id, t.run_number, t.scheduled_for, t.event_id, t.triggered_by,
       CASE WHEN t.skipped THEN 'cancelled' ELSE 'pending' END::public.background_task_status,
       CASE WHEN t.skipped THEN $7 END,
       CASE WHEN t.skipped THEN now() END
FROM unnest($1::int8[], $2::int4[], $3::timestamptz[], $4::int8[], $5::text[], $6::bool[])
     AS t(action_id, run_number, scheduled_for, event_id, triggered_by, skipped)
ON CONFLICT DO NOTHING
RETURNING id, scheduled_action_id, run_number, scheduled_for, event_id, triggered_by,
          status = 'cancelled' AS skipped";

/// Records `runs`; returns those inserted (a run whose due time or event already has one is
/// left out).
pub async fn insert_runs<C: GenericClient>(
    client: &C,
    runs: &[NewRun],
) -> Result<Vec<InsertedRun>, ScheduleError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = runs.iter().map(|r| r.action_id).collect();
    let numbers: Vec<i32> = runs.iter().map(|r| r.run_number.max(1)).collect();
    let due: Vec<Option<DateTime<Utc>>> = runs.iter().map(|r| r.scheduled_for).collect();
    let events: Vec<Option<i64>> = runs.iter().map(|r| r.event_id).collect();
    let by: Vec<&str> = runs.iter().map(|r| r.triggered_by.as_str()).collect();
    let skipped: Vec<bool> = runs.iter().map(|r| r.skipped).collect();
    let stmt = client.prepare_cached(INSERT_RUNS_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &ids,
                &numbers,
                &due,
                &events,
                &by,
                &skipped,
                &SKIPPED_SUMMARY,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(InsertedRun {
                id: r.try_get(0)?,
                action_id: r.try_get(1)?,
                run_number: r.try_get(2)?,
                scheduled_for: r.try_get(3)?,
                event_id: r.try_get(4)?,
                triggered_by: r.try_get(5)?,
                skipped: r.try_get(6)?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?)
}

/// The dispatch job of a run. Its unique key names the schedule and the due time (or event),
/// so even a second run row for the same due time could not be dispatched twice.
pub fn dispatch_job(run: &InsertedRun) -> NewJob {
    let key = match (run.scheduled_for, run.event_id) {
        (Some(at), _) => format!(
            "scheduled_action:{}:at:{}",
            run.action_id,
            at.timestamp_micros()
        ),
        (None, Some(event)) => format!("scheduled_action:{}:event:{event}", run.action_id),
        (None, None) => format!("scheduled_action_run:{}", run.id),
    };
    NewJob::new(
        DISPATCH_KIND,
        json!({"run_id": run.id, "action_id": run.action_id}),
    )
    .queue(DISPATCH_QUEUE)
    .max_attempts(DISPATCH_ATTEMPTS)
    .unique_key(key)
}

/// An event about schedule `action_id` (`scheduled_action.<what>`).
pub fn action_event(what: &str, action_id: i64, payload: Value, source: &str) -> NewEvent {
    let mut payload = payload;
    if let Value::Object(m) = &mut payload {
        m.insert("action_id".into(), json!(action_id));
    }
    NewEvent::new(format!("scheduled_action.{what}"), payload)
        .topic("scheduled_actions")
        .topic(format!("scheduled_actions:{action_id}"))
        .source(source)
}

fn run_payload(run: &InsertedRun) -> Value {
    json!({
        "run_id": run.id,
        "run_number": run.run_number,
        "scheduled_for": run.scheduled_for,
        "event_id": run.event_id,
        "triggered_by": run.triggered_by,
    })
}

/// Records `runs`, enqueues a dispatch job for each one that is not skipped, and publishes
/// `scheduled_action.triggered` (or `.skipped`) for each — all on `client`, normally the
/// caller's transaction.
pub async fn fire<C: GenericClient>(
    client: &C,
    runs: &[NewRun],
    source: &str,
) -> Result<Vec<InsertedRun>, ScheduleError> {
    let inserted = insert_runs(client, runs).await?;
    let jobs: Vec<NewJob> = inserted
        .iter()
        .filter(|r| !r.skipped)
        .map(dispatch_job)
        .collect();
    gathering_queue::enqueue_many_in(client, &jobs).await?;
    let events: Vec<NewEvent> = inserted
        .iter()
        .map(|r| {
            let what = if r.skipped { "skipped" } else { "triggered" };
            action_event(what, r.action_id, run_payload(r), source)
        })
        .collect();
    gathering_events::publish_in(client, &events).await?;
    Ok(inserted)
}

const LOCK_FOR_TRIGGER_SQL: &str =
    "SELECT execution_count FROM circle.scheduled_actions WHERE id = $1 FOR UPDATE";
const COUNT_MANUAL_SQL: &str = "
UPDATE circle.scheduled_actions
SET execution_count = execution_count + 1, last_run_at = now()
WHERE id = $1";

/// Fires schedule `action_id` now (`triggered_by = manual`), whatever its status. Returns
/// `None` when there is no such schedule.
pub async fn trigger_now<C: GenericClient>(
    client: &C,
    action_id: i64,
    source: &str,
) -> Result<Option<InsertedRun>, ScheduleError> {
    let Some(row) = client
        .query_opt(LOCK_FOR_TRIGGER_SQL, &[&action_id])
        .await?
    else {
        return Ok(None);
    };
    let count: i32 = row.try_get(0)?;
    let run = NewRun {
        action_id,
        run_number: count.saturating_add(1),
        scheduled_for: None,
        event_id: None,
        triggered_by: TriggeredBy::Manual,
        skipped: false,
    };
    let inserted = fire(client, std::slice::from_ref(&run), source).await?;
    client.execute(COUNT_MANUAL_SQL, &[&action_id]).await?;
    Ok(inserted.into_iter().next())
}
