//! The handlers that change a schedule. Each change is one transaction on
//! `circle.scheduled_actions` with its `scheduled_action.*` event.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gathering_db::tokio_postgres::Row;
use gathering_events::publish_in;
use gathering_schedule::action::{self, ActionType};
use gathering_schedule::store::{action_event, trigger_now};
use gathering_schedule::{MissedRunPolicy, ScheduleType, Timing, TimingFields};
use serde_json::{Value, json};

use super::body::{
    CreateBody, Settings, UpdateBody, check_action, check_settings, db_now, first_due, or_stored,
    timing_columns,
};
use super::{fetch, not_found, schedule_error};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

const INSERT_SQL: &str = "
INSERT INTO circle.scheduled_actions
    (agent_id, circle_id, name, description, schedule_type, cron_expression, interval_seconds,
     event_trigger, timezone, missed_run_policy, action_type, action_config, goal, max_steps,
     timeout_seconds, status, start_date, end_date, max_executions, retry_on_failure,
     max_retries, retry_delay_seconds, allow_concurrent, tags, metadata, created_by, next_run_at)
VALUES ($1, $2, $3, $4, $5::text::public.schedule_type, $6, $7, $8, $9, $10, $11, $12, $13, $14,
        $15, 'active', COALESCE($16, now()), $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
RETURNING id";

pub(super) async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check_settings(&Settings {
        name: Some(&b.name),
        goal: Some(&b.goal),
        description: b.description.as_deref(),
        max_steps: Some(b.max_steps),
        timeout_seconds: Some(b.timeout_seconds),
        max_retries: Some(b.max_retries),
        retry_delay_seconds: Some(b.retry_delay_seconds),
        max_executions: Some(b.max_executions),
        tags: Some(&b.tags),
    })?;
    let timing = Timing::from_fields(&TimingFields {
        schedule_type: &b.schedule_type,
        cron_expression: b.cron_expression.as_deref(),
        interval_seconds: b.interval_seconds,
        event_trigger: b.event_trigger.as_deref(),
        run_at: b.next_run_at,
        timezone: b.timezone.as_deref(),
    })
    .map_err(schedule_error)?;
    let policy = MissedRunPolicy::parse(b.missed_run_policy.as_deref().unwrap_or("run_once"))
        .map_err(schedule_error)?;
    let action = check_action(&b.action_type, &b.action_config, &b.metadata, &b.goal)?;
    let tz = gathering_schedule::parse_timezone(b.timezone.as_deref().unwrap_or(""))
        .map_err(schedule_error)?;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let now = db_now(&tx).await?;
    let next = first_due(&timing, now, b.start_date, b.end_date)?;
    if tx
        .query_opt("SELECT 1 FROM agent.agents WHERE id = $1", &[&b.agent_id])
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "Agent {} not found",
            b.agent_id
        )));
    }
    if let Some(c) = b.circle_id
        && tx
            .query_opt("SELECT 1 FROM circle.circles WHERE id = $1", &[&c])
            .await?
            .is_none()
    {
        return Err(ApiError::NotFound(format!("Circle {c} not found")));
    }
    if action == ActionType::ExecutePipeline {
        let pipeline =
            action::pipeline_id(&b.action_config, &b.metadata).map_err(schedule_error)?;
        if tx
            .query_opt("SELECT 1 FROM circle.pipelines WHERE id = $1", &[&pipeline])
            .await?
            .is_none()
        {
            return Err(ApiError::Validation(vec![FieldError::body(
                "action_config",
                format!("pipeline {pipeline} does not exist"),
            )]));
        }
    }
    let (cron, interval, event) = timing_columns(&timing);
    let tz_name = tz.name().to_owned();
    let max_exec = b.max_executions.map(|n| n as i32);
    let created_by = user.0.sub.clone();
    let id: i64 = tx
        .query_one(
            INSERT_SQL,
            &[
                &b.agent_id,
                &b.circle_id,
                &b.name.trim(),
                &b.description,
                &timing.schedule_type().as_str(),
                &cron,
                &interval,
                &event,
                &tz_name,
                &policy.as_str(),
                &action.as_str(),
                &b.action_config,
                &b.goal,
                &(b.max_steps as i32),
                &(b.timeout_seconds as i32),
                &b.start_date,
                &b.end_date,
                &max_exec,
                &b.retry_on_failure,
                &(b.max_retries as i32),
                &(b.retry_delay_seconds as i32),
                &b.allow_concurrent,
                &b.tags,
                &b.metadata,
                &created_by,
                &next,
            ],
        )
        .await?
        .try_get(0)?;
    publish_in(
        &tx,
        &[action_event(
            "created",
            id,
            json!({"name": b.name.trim(), "schedule_type": timing.schedule_type().as_str(),
                   "next_run_at": next}),
            "edge",
        )],
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(fetch(&state, id).await?))
}

const LOCK_SQL: &str = "
SELECT schedule_type::text AS schedule_type, cron_expression, interval_seconds, event_trigger,
       timezone, next_run_at, start_date, end_date, status::text AS status, action_type,
       action_config, metadata, goal, name, description, max_steps, timeout_seconds,
       retry_on_failure, max_retries, retry_delay_seconds, allow_concurrent, max_executions, tags,
       missed_run_policy, execution_count
FROM circle.scheduled_actions WHERE id = $1 FOR UPDATE";

const UPDATE_SQL: &str = "
UPDATE circle.scheduled_actions SET
    name = $2, description = $3, goal = $4, cron_expression = $5, interval_seconds = $6,
    event_trigger = $7, timezone = $8, next_run_at = $9, max_steps = $10, timeout_seconds = $11,
    retry_on_failure = $12, max_retries = $13, retry_delay_seconds = $14, allow_concurrent = $15,
    end_date = $16, max_executions = $17, tags = $18, missed_run_policy = $19, action_type = $20,
    action_config = $21, metadata = $22, status = $23::text::public.scheduled_action_status
WHERE id = $1";

/// Where an updated schedule stands: its timing (the body's fields over the stored ones), its
/// zone, its next due time, and whether an expired schedule comes back to life.
struct Placement {
    kind: ScheduleType,
    timing: Timing,
    tz: String,
    end_date: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    status: String,
    revive: bool,
}

fn placement(b: &UpdateBody, cur: &Row, now: DateTime<Utc>) -> Result<Placement, ApiError> {
    let schedule_type: String = cur.try_get("schedule_type")?;
    let kind = ScheduleType::parse(&schedule_type).map_err(schedule_error)?;
    // A field of another schedule type would be stored and never used: refused.
    let wrong = |field: &str| {
        Err(ApiError::Validation(vec![FieldError::body(
            field,
            format!("{field} does not apply to a {kind} schedule"),
        )]))
    };
    if b.cron_expression.is_some() && kind != ScheduleType::Cron {
        return wrong("cron_expression");
    }
    if b.interval_seconds.is_some() && kind != ScheduleType::Interval {
        return wrong("interval_seconds");
    }
    if b.event_trigger.is_some() && kind != ScheduleType::Event {
        return wrong("event_trigger");
    }
    if b.next_run_at.is_some() && kind != ScheduleType::Once {
        return wrong("next_run_at");
    }
    let cron: Option<String> = match &b.cron_expression {
        Some(c) => Some(c.clone()),
        None => cur.try_get("cron_expression")?,
    };
    let interval = match b.interval_seconds {
        Some(i) => Some(i),
        None => cur
            .try_get::<_, Option<i32>>("interval_seconds")?
            .map(i64::from),
    };
    let event: Option<String> = match &b.event_trigger {
        Some(e) => Some(e.clone()),
        None => cur.try_get("event_trigger")?,
    };
    let tz_raw: String = or_stored(b.timezone.clone(), cur, "timezone")?;
    let current_next: Option<DateTime<Utc>> = cur.try_get("next_run_at")?;
    let timing = Timing::from_fields(&TimingFields {
        schedule_type: &schedule_type,
        cron_expression: cron.as_deref(),
        interval_seconds: interval,
        event_trigger: event.as_deref(),
        run_at: b.next_run_at.or(current_next).or(Some(now)),
        timezone: Some(&tz_raw),
    })
    .map_err(schedule_error)?;
    let tz = gathering_schedule::parse_timezone(&tz_raw).map_err(schedule_error)?;
    let end_date: Option<DateTime<Utc>> = match b.end_date {
        Some(e) => e,
        None => cur.try_get("end_date")?,
    };
    let start_date: Option<DateTime<Utc>> = cur.try_get("start_date")?;
    let status: String = cur.try_get("status")?;
    // An expired schedule given a new timing, a later end or more executions runs again.
    let revive = status == "expired"
        && (b.touches_timing() || b.end_date.is_some() || b.max_executions.is_some());
    // A new timing starts over from now; otherwise the schedule keeps its place.
    let next = if b.touches_timing() || revive {
        first_due(&timing, now, start_date, end_date)?
    } else {
        if b.end_date.is_some() {
            first_due(&timing, now, start_date, end_date).map(|_| ())?;
        }
        current_next
    };
    Ok(Placement {
        kind,
        timing,
        tz: tz.name().to_owned(),
        end_date,
        next,
        status,
        revive,
    })
}

pub(super) async fn update(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let b = body.into_inner();
    if b.is_empty() {
        return Err(ApiError::BadRequest("No updates provided".into()));
    }
    check_settings(&Settings {
        name: b.name.as_deref(),
        goal: b.goal.as_deref(),
        description: b.description.as_ref().and_then(|d| d.as_deref()),
        max_steps: b.max_steps,
        timeout_seconds: b.timeout_seconds,
        max_retries: b.max_retries,
        retry_delay_seconds: b.retry_delay_seconds,
        max_executions: b.max_executions,
        tags: b.tags.as_deref(),
    })?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(cur) = tx.query_opt(LOCK_SQL, &[&id]).await? else {
        return Err(not_found(id));
    };
    let now = db_now(&tx).await?;
    let Placement {
        kind,
        timing,
        tz,
        end_date,
        next,
        mut status,
        revive,
    } = placement(&b, &cur, now)?;
    let goal: String = or_stored(b.goal.clone(), &cur, "goal")?;
    let action_type: String = or_stored(b.action_type.clone(), &cur, "action_type")?;
    let config: Value = or_stored(b.action_config.clone(), &cur, "action_config")?;
    let metadata: Value = or_stored(b.metadata.clone(), &cur, "metadata")?;
    check_action(&action_type, &config, &metadata, &goal)?;
    let policy = match &b.missed_run_policy {
        Some(p) => MissedRunPolicy::parse(p)
            .map_err(schedule_error)?
            .as_str()
            .to_owned(),
        None => cur.try_get("missed_run_policy")?,
    };
    let (cron_col, interval_col, event_col) = timing_columns(&timing);
    let name: String = or_stored(b.name.as_deref().map(|n| n.trim().to_owned()), &cur, "name")?;
    let description: Option<String> = match &b.description {
        Some(d) => d.clone(),
        None => cur.try_get("description")?,
    };
    let int = |v: Option<i64>, col: &str| or_stored(v.map(|n| n as i32), &cur, col);
    let max_steps: i32 = int(b.max_steps, "max_steps")?;
    let timeout_seconds: i32 = int(b.timeout_seconds, "timeout_seconds")?;
    let max_retries: i32 = int(b.max_retries, "max_retries")?;
    let retry_delay_seconds: i32 = int(b.retry_delay_seconds, "retry_delay_seconds")?;
    let retry_on_failure: bool = or_stored(b.retry_on_failure, &cur, "retry_on_failure")?;
    let allow_concurrent: bool = or_stored(b.allow_concurrent, &cur, "allow_concurrent")?;
    let max_executions: Option<i32> = match b.max_executions {
        Some(m) => m.map(|n| n as i32),
        None => cur.try_get("max_executions")?,
    };
    let tags: Vec<String> = or_stored(b.tags.clone(), &cur, "tags")?;
    let executed: i32 = cur.try_get("execution_count")?;
    if revive
        && (next.is_some() || kind == ScheduleType::Event)
        && max_executions.is_none_or(|m| executed < m)
    {
        status = "active".into();
    }
    tx.execute(
        UPDATE_SQL,
        &[
            &id,
            &name,
            &description,
            &goal,
            &cron_col,
            &interval_col,
            &event_col,
            &tz,
            &next,
            &max_steps,
            &timeout_seconds,
            &retry_on_failure,
            &max_retries,
            &retry_delay_seconds,
            &allow_concurrent,
            &end_date,
            &max_executions,
            &tags,
            &policy,
            &action_type,
            &config,
            &metadata,
            &status,
        ],
    )
    .await?;
    publish_in(
        &tx,
        &[action_event(
            "updated",
            id,
            json!({"status": status, "next_run_at": next}),
            "edge",
        )],
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(fetch(&state, id).await?))
}

const PAUSE_SQL: &str = "
UPDATE circle.scheduled_actions SET status = 'paused' WHERE id = $1 AND status = 'active'
RETURNING id";

pub(super) async fn pause(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if tx.query_opt(PAUSE_SQL, &[&id]).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "Scheduled action {id} not found or not active"
        )));
    }
    publish_in(&tx, &[action_event("paused", id, json!({}), "edge")])
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "paused", "action_id": id})))
}

const LOCK_PAUSED_SQL: &str = "
SELECT schedule_type::text AS schedule_type, cron_expression, interval_seconds, event_trigger,
       timezone, next_run_at, start_date, end_date
FROM circle.scheduled_actions WHERE id = $1 AND status = 'paused' FOR UPDATE";
const RESUME_SQL: &str = "
UPDATE circle.scheduled_actions SET status = 'active', next_run_at = $2 WHERE id = $1";

pub(super) async fn resume(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(cur) = tx.query_opt(LOCK_PAUSED_SQL, &[&id]).await? else {
        return Err(ApiError::NotFound(format!(
            "Scheduled action {id} not found or not paused"
        )));
    };
    let now = db_now(&tx).await?;
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
    })
    .map_err(schedule_error)?;
    // The paused time is not "missed": a recurring schedule resumes from now. A `once` keeps
    // its time (and runs at once if that passed while paused).
    let next = match timing {
        Timing::Once { .. } => current,
        _ => timing.first_due(now, cur.try_get("start_date")?),
    };
    tx.execute(RESUME_SQL, &[&id, &next]).await?;
    publish_in(
        &tx,
        &[action_event(
            "resumed",
            id,
            json!({"next_run_at": next}),
            "edge",
        )],
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "active", "action_id": id})))
}

pub(super) async fn trigger(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let run = trigger_now(&tx, id, "edge")
        .await
        .map_err(ApiError::internal)?;
    if run.is_none() {
        return Err(not_found(id));
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "triggered", "action_id": id})))
}

pub(super) async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let gone = tx
        .query_opt(
            "DELETE FROM circle.scheduled_actions WHERE id = $1 RETURNING id",
            &[&id],
        )
        .await?;
    if gone.is_none() {
        return Err(not_found(id));
    }
    publish_in(&tx, &[action_event("deleted", id, json!({}), "edge")])
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "deleted", "action_id": id})))
}
