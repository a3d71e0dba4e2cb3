//! Claiming due time schedules (cron, interval, once) and firing them, exactly once.
//!
//! One transaction per batch: due schedules are locked with `FOR UPDATE SKIP LOCKED` (other
//! instances skip them rather than wait), and before it commits the same transaction records
//! a run per due time (unique on schedule and due time), enqueues each run's dispatch job,
//! publishes the events and moves `next_run_at` on. Either all of it happens or none: an
//! instance killed mid-way leaves the schedule due and unlocked for the others.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_events::NewEvent;
use gathering_schedule::store::{self, NewRun};
use gathering_schedule::{DueState, Limits, MissedRunPolicy, Timing, TimingFields, plan};
use serde_json::json;

use crate::Error;
use crate::state::Ctx;

const CLAIM_SQL: &str = "
SELECT sa.id, sa.schedule_type::text AS schedule_type, sa.cron_expression, sa.interval_seconds,
       sa.timezone, sa.missed_run_policy, sa.next_run_at, sa.start_date, sa.end_date,
       sa.max_executions, sa.execution_count, sa.allow_concurrent,
       EXISTS (SELECT 1 FROM circle.scheduled_action_runs r
               WHERE r.scheduled_action_id = sa.id AND r.status IN ('pending', 'running')
                 AND r.triggered_at > now() - make_interval(secs => sa.timeout_seconds)) AS busy,
       now() AS db_now
FROM circle.scheduled_actions sa
WHERE sa.status = 'active' AND sa.next_run_at IS NOT NULL AND sa.next_run_at <= now()
  AND sa.schedule_type <> 'event'
ORDER BY sa.next_run_at
LIMIT $1
FOR UPDATE OF sa SKIP LOCKED";

/// Milliseconds until the earliest due time of any active schedule (negative when one is
/// overdue); `NULL` when none has a due time.
const EARLIEST_SQL: &str = "
SELECT (EXTRACT(EPOCH FROM (min(next_run_at) - clock_timestamp())) * 1000)::float8
FROM circle.scheduled_actions
WHERE status = 'active' AND next_run_at IS NOT NULL AND schedule_type <> 'event'";

/// What one claim did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Claimed {
    /// Schedules locked and processed.
    pub schedules: usize,
    /// Runs recorded (skipped ones included).
    pub runs: usize,
}

struct Due {
    id: i64,
    timing: Result<Timing, gathering_schedule::ScheduleError>,
    policy: MissedRunPolicy,
    state: DueState,
    count: i32,
    allow_concurrent: bool,
    busy: bool,
}

fn due_from_row(row: &Row) -> Result<Due, PgError> {
    let schedule_type: String = row.try_get("schedule_type")?;
    let cron: Option<String> = row.try_get("cron_expression")?;
    let interval: Option<i32> = row.try_get("interval_seconds")?;
    let tz: String = row.try_get("timezone")?;
    let next: DateTime<Utc> = row.try_get("next_run_at")?;
    let timing = Timing::from_fields(&TimingFields {
        schedule_type: &schedule_type,
        cron_expression: cron.as_deref(),
        interval_seconds: interval.map(i64::from),
        event_trigger: None,
        run_at: Some(next),
        timezone: Some(&tz),
    });
    let max: Option<i32> = row.try_get("max_executions")?;
    let count: i32 = row.try_get("execution_count")?;
    Ok(Due {
        id: row.try_get("id")?,
        timing,
        policy: MissedRunPolicy::parse(row.try_get("missed_run_policy")?).unwrap_or_default(),
        state: DueState {
            next_run_at: next,
            start_date: row.try_get("start_date")?,
            end_date: row.try_get("end_date")?,
            remaining: max.map(|m| i64::from(m) - i64::from(count)),
        },
        count,
        allow_concurrent: row.try_get("allow_concurrent")?,
        busy: row.try_get("busy")?,
    })
}

/// Claims up to one batch of due schedules and fires them.
pub async fn claim_due(ctx: &Ctx) -> Result<Claimed, Error> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached(CLAIM_SQL).await?;
    let rows = tx.query(&stmt, &[&ctx.batch]).await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Claimed::default());
    }
    let now: DateTime<Utc> = rows[0].try_get("db_now")?;
    let due = rows
        .iter()
        .map(due_from_row)
        .collect::<Result<Vec<Due>, _>>()?;
    let limits = ctx.limits;
    // Computing next times is CPU work: off the async threads for a large batch.
    let (due, planned) = if due.len() > 64 {
        tokio::task::spawn_blocking(move || {
            let p = plan_all(&due, now, &limits);
            (due, p)
        })
        .await?
    } else {
        let p = plan_all(&due, now, &limits);
        (due, p)
    };

    let mut runs: Vec<NewRun> = Vec::new();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut ids = Vec::with_capacity(due.len());
    let mut nexts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(due.len());
    let mut statuses: Vec<Option<&str>> = Vec::with_capacity(due.len());
    for (d, p) in due.iter().zip(&planned) {
        ids.push(d.id);
        match p {
            Err(reason) => {
                // A schedule the table holds but that no longer parses (edited by hand):
                // disabled, so that it stops coming back, and said so.
                nexts.push(None);
                statuses.push(Some("disabled"));
                events.push(store::action_event(
                    "disabled",
                    d.id,
                    json!({"error": reason}),
                    "scheduler",
                ));
            }
            Ok(p) => {
                // allow_concurrent off and a run still pending or running: each due time is
                // recorded as skipped rather than silently lost. A run older than the
                // schedule's timeout_seconds no longer counts (a lost run cannot block it
                // forever).
                let skipped = !d.allow_concurrent && d.busy;
                for (k, fire) in p.fires.iter().enumerate() {
                    let offset = if skipped { 1 } else { k as i32 + 1 };
                    runs.push(NewRun {
                        action_id: d.id,
                        run_number: d.count.saturating_add(offset),
                        scheduled_for: Some(fire.due),
                        event_id: None,
                        triggered_by: fire.by,
                        skipped,
                    });
                }
                if p.dropped > 0 {
                    events.push(store::action_event(
                        "missed",
                        d.id,
                        json!({"missed": p.dropped, "policy": d.policy.as_str()}),
                        "scheduler",
                    ));
                }
                nexts.push(p.next);
                if p.next.is_none() {
                    statuses.push(Some("expired"));
                    events.push(store::action_event("expired", d.id, json!({}), "scheduler"));
                } else {
                    statuses.push(None);
                }
            }
        }
    }
    let inserted = store::fire(&tx, &runs, "scheduler").await?;
    let mut per_action: HashMap<i64, i32> = HashMap::new();
    for r in inserted.iter().filter(|r| !r.skipped) {
        *per_action.entry(r.action_id).or_default() += 1;
    }
    let fired: Vec<i32> = ids
        .iter()
        .map(|id| per_action.get(id).copied().unwrap_or(0))
        .collect();
    gathering_schedule::fired::advance(&tx, &ids, &nexts, &fired, &statuses).await?;
    gathering_events::publish_in(&tx, &events).await?;
    tx.commit().await?;

    for r in &inserted {
        if let Some(at) = r.scheduled_for {
            let late = (now - at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            metrics::histogram!("scheduler_fire_lateness_seconds").record(late.max(0.0));
        }
    }
    let fired_total = inserted.iter().filter(|r| !r.skipped).count();
    ctx.stats
        .fired
        .fetch_add(fired_total as u64, Ordering::Relaxed);
    ctx.stats
        .skipped
        .fetch_add((inserted.len() - fired_total) as u64, Ordering::Relaxed);
    metrics::counter!("scheduler_runs_fired_total").increment(fired_total as u64);
    Ok(Claimed {
        schedules: due.len(),
        runs: inserted.len(),
    })
}

fn plan_all(
    due: &[Due],
    now: DateTime<Utc>,
    limits: &Limits,
) -> Vec<Result<gathering_schedule::Plan, String>> {
    due.iter()
        .map(|d| match &d.timing {
            Ok(t) => Ok(plan(t, &d.state, now, d.policy, limits)),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

/// Milliseconds until the earliest due time (negative when overdue); `None` when nothing is
/// scheduled.
pub async fn earliest(ctx: &Ctx) -> Result<Option<f64>, Error> {
    let client = ctx.pool.get().await?;
    let stmt = client.prepare_cached(EARLIEST_SQL).await?;
    let row = client.query_one(&stmt, &[]).await?;
    Ok(row.try_get(0)?)
}
