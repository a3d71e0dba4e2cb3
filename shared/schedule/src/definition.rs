//! Writes of `circle.scheduled_actions`, the table this crate owns: create, update, pause,
//! resume and delete, each with its `scheduled_action.*` event in the caller's transaction (so
//! the change and its event exist together). The edge's `/scheduled-actions` routes and the
//! agents' schedule tools both come here, so a schedule paused or resumed by an agent behaves
//! exactly like one paused or resumed through the API.
//!
//! Callers validate what a client sent (limits, the action's settings, dates); this module
//! stores it. Schedulers need no message: a trigger on the table wakes them (migration V40).

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_events::publish_in;
use serde_json::{Value, json};

use crate::error::ScheduleError;
use crate::store::action_event;
use crate::timing::{Timing, TimingFields};

/// Every stored setting of a schedule (create and update write the same columns).
#[derive(Debug, Clone)]
pub struct Definition<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub goal: &'a str,
    /// Where the timing is stored: see [`timing_columns`].
    pub timing: &'a Timing,
    /// IANA zone name (or `UTC`).
    pub timezone: &'a str,
    pub missed_run_policy: &'a str,
    pub action_type: &'a str,
    pub action_config: &'a Value,
    pub metadata: &'a Value,
    pub max_steps: i32,
    pub timeout_seconds: i32,
    pub retry_on_failure: bool,
    pub max_retries: i32,
    pub retry_delay_seconds: i32,
    pub allow_concurrent: bool,
    pub end_date: Option<DateTime<Utc>>,
    pub max_executions: Option<i32>,
    pub tags: &'a [String],
    /// The first (or next) due time; `None` for event schedules.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// What only creation sets.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub agent_id: i64,
    pub circle_id: Option<i64>,
    pub start_date: Option<DateTime<Utc>>,
    pub created_by: &'a str,
}

/// The columns a timing is stored in: cron expression, interval, event kind.
pub fn timing_columns(t: &Timing) -> (Option<String>, Option<i32>, Option<String>) {
    match t {
        Timing::Cron { expr, .. } => (Some(expr.source().to_owned()), None, None),
        Timing::Interval { every } => (None, Some(every.num_seconds() as i32), None),
        Timing::Once { .. } => (None, None, None),
        Timing::Event { kind } => (None, None, Some(kind.clone())),
    }
}

const INSERT_SQL: &str = "
INSERT INTO circle.scheduled_actions
    (agent_id, circle_id, name, description, schedule_type, cron_expression, interval_seconds,
     event_trigger, timezone, missed_run_policy, action_type, action_config, goal, max_steps,
     timeout_seconds, status, start_date, end_date, max_executions, retry_on_failure,
     max_retries, retry_delay_seconds, allow_concurrent, tags, metadata, created_by, next_run_at)
VALUES ($1, $2, $3, $4, $5::text::public.schedule_type, $6, $7, $8, $9, $10, $11, $12, $13, $14,
        $15, 'active', COALESCE($16, now()), $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
RETURNING id";

/// Stores a new, active schedule; returns its id.
pub async fn create<C: GenericClient>(
    tx: &C,
    owner: &Owner<'_>,
    d: &Definition<'_>,
    source: &str,
) -> Result<i64, ScheduleError> {
    let (cron, interval, event) = timing_columns(d.timing);
    let kind = d.timing.schedule_type().as_str();
    let id: i64 = tx
        .query_one(
            INSERT_SQL,
            &[
                &owner.agent_id,
                &owner.circle_id,
                &d.name,
                &d.description,
                &kind,
                &cron,
                &interval,
                &event,
                &d.timezone,
                &d.missed_run_policy,
                &d.action_type,
                &d.action_config,
                &d.goal,
                &d.max_steps,
                &d.timeout_seconds,
                &owner.start_date,
                &d.end_date,
                &d.max_executions,
                &d.retry_on_failure,
                &d.max_retries,
                &d.retry_delay_seconds,
                &d.allow_concurrent,
                &d.tags,
                &d.metadata,
                &owner.created_by,
                &d.next_run_at,
            ],
        )
        .await?
        .try_get(0)?;
    let payload = json!({"name": d.name, "schedule_type": kind, "next_run_at": d.next_run_at});
    publish_in(tx, &[action_event("created", id, payload, source)]).await?;
    Ok(id)
}

const UPDATE_SQL: &str = "
UPDATE circle.scheduled_actions SET
    name = $2, description = $3, goal = $4, cron_expression = $5, interval_seconds = $6,
    event_trigger = $7, timezone = $8, next_run_at = $9, max_steps = $10, timeout_seconds = $11,
    retry_on_failure = $12, max_retries = $13, retry_delay_seconds = $14, allow_concurrent = $15,
    end_date = $16, max_executions = $17, tags = $18, missed_run_policy = $19, action_type = $20,
    action_config = $21, metadata = $22, status = $23::text::public.scheduled_action_status
WHERE id = $1";

/// Replaces a schedule's settings and status (the caller holds its row lock).
pub async fn update<C: GenericClient>(
    tx: &C,
    id: i64,
    d: &Definition<'_>,
    status: &str,
    source: &str,
) -> Result<(), ScheduleError> {
    let (cron, interval, event) = timing_columns(d.timing);
    tx.execute(
        UPDATE_SQL,
        &[
            &id,
            &d.name,
            &d.description,
            &d.goal,
            &cron,
            &interval,
            &event,
            &d.timezone,
            &d.next_run_at,
            &d.max_steps,
            &d.timeout_seconds,
            &d.retry_on_failure,
            &d.max_retries,
            &d.retry_delay_seconds,
            &d.allow_concurrent,
            &d.end_date,
            &d.max_executions,
            &d.tags,
            &d.missed_run_policy,
            &d.action_type,
            &d.action_config,
            &d.metadata,
            &status,
        ],
    )
    .await?;
    let payload = json!({"status": status, "next_run_at": d.next_run_at});
    publish_in(tx, &[action_event("updated", id, payload, source)]).await?;
    Ok(())
}

const PAUSE_SQL: &str = "
UPDATE circle.scheduled_actions SET status = 'paused' WHERE id = $1 AND status = 'active'
RETURNING id";

/// Pauses an active schedule; `false` when there is no active schedule `id`.
pub async fn pause<C: GenericClient>(tx: &C, id: i64, source: &str) -> Result<bool, ScheduleError> {
    if tx.query_opt(PAUSE_SQL, &[&id]).await?.is_none() {
        return Ok(false);
    }
    publish_in(tx, &[action_event("paused", id, json!({}), source)]).await?;
    Ok(true)
}

const LOCK_PAUSED_SQL: &str = "
SELECT schedule_type::text AS schedule_type, cron_expression, interval_seconds, event_trigger,
       timezone, next_run_at, start_date, now() AS now
FROM circle.scheduled_actions WHERE id = $1 AND status = 'paused' FOR UPDATE";
const RESUME_SQL: &str = "
UPDATE circle.scheduled_actions SET status = 'active', next_run_at = $2 WHERE id = $1";

/// Resumes a paused schedule. The paused time is not "missed": a recurring schedule resumes
/// from now; a `once` keeps its time (and runs at once if that passed while paused). Returns
/// the next due time, or `None` when there is no paused schedule `id`.
pub async fn resume<C: GenericClient>(
    tx: &C,
    id: i64,
    source: &str,
) -> Result<Option<Option<DateTime<Utc>>>, ScheduleError> {
    let Some(cur) = tx.query_opt(LOCK_PAUSED_SQL, &[&id]).await? else {
        return Ok(None);
    };
    let now: DateTime<Utc> = cur.try_get("now")?;
    let schedule_type: String = cur.try_get("schedule_type")?;
    let tz: String = cur.try_get("timezone")?;
    let current: Option<DateTime<Utc>> = cur.try_get("next_run_at")?;
    let timing = Timing::from_fields(&TimingFields {
        schedule_type: &schedule_type,
        cron_expression: cur.try_get::<_, Option<&str>>("cron_expression")?,
        interval_seconds: cur
            .try_get::<_, Option<i32>>("interval_seconds")?
            .map(i64::from),
        event_trigger: cur.try_get::<_, Option<&str>>("event_trigger")?,
        run_at: current.or(Some(now)),
        timezone: Some(&tz),
    })?;
    let next = match timing {
        Timing::Once { .. } => current,
        _ => timing.first_due(now, cur.try_get("start_date")?),
    };
    tx.execute(RESUME_SQL, &[&id, &next]).await?;
    let payload = json!({"next_run_at": next});
    publish_in(tx, &[action_event("resumed", id, payload, source)]).await?;
    Ok(Some(next))
}

/// Deletes a schedule (its runs go with it); `false` when there is none `id`.
pub async fn delete<C: GenericClient>(
    tx: &C,
    id: i64,
    source: &str,
) -> Result<bool, ScheduleError> {
    let gone = tx
        .query_opt(
            "DELETE FROM circle.scheduled_actions WHERE id = $1 RETURNING id",
            &[&id],
        )
        .await?;
    if gone.is_none() {
        return Ok(false);
    }
    publish_in(tx, &[action_event("deleted", id, json!({}), source)]).await?;
    Ok(true)
}
