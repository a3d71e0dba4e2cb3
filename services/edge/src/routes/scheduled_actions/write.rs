//! The handlers that change a schedule. Each change is one transaction on
//! `circle.scheduled_actions` with its `scheduled_action.*` event.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gathering_db::tokio_postgres::Row;
use gathering_schedule::action::{self, ActionType};
use gathering_schedule::definition::{self, Definition, Owner};
use gathering_schedule::store::trigger_now;
use gathering_schedule::{MissedRunPolicy, ScheduleType, Timing, TimingFields};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::body::{
    CreateBody, Settings, UpdateBody, check_action, check_settings, db_now, first_due, or_stored,
};
use super::{ACTION, fetch, not_found, schedule_error};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

/// The `source` of the events these changes publish.
const SOURCE: &str = "edge";

/// What pause, resume, trigger and delete answer.
#[derive(Serialize, ToSchema)]
pub(super) struct StatusChange {
    /// `paused`, `active`, `triggered` or `deleted`.
    status: &'static str,
    action_id: i64,
}

fn changed(status: &'static str, action_id: i64) -> HttpResponse {
    HttpResponse::Ok().json(StatusChange { status, action_id })
}

/// Creates a schedule (cron, interval, once or event); an invalid cron expression, time zone or
/// date is a 422 naming the field.
#[utoipa::path(
    post,
    path = "/scheduled-actions",
    request_body = CreateBody,
    responses(
        (status = 200, description = ACTION, body = Object),
        (status = 400, description = "A field the schedule type needs is missing", body = Detail),
        (status = 404, description = "No such agent or circle", body = Detail),
    ),
)]
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
    let id = definition::create(
        &tx,
        &Owner {
            agent_id: b.agent_id,
            circle_id: b.circle_id,
            start_date: b.start_date,
            created_by: &user.0.sub,
        },
        &Definition {
            name: b.name.trim(),
            description: b.description.as_deref(),
            goal: &b.goal,
            timing: &timing,
            timezone: tz.name(),
            missed_run_policy: policy.as_str(),
            action_type: action.as_str(),
            action_config: &b.action_config,
            metadata: &b.metadata,
            max_steps: b.max_steps as i32,
            timeout_seconds: b.timeout_seconds as i32,
            retry_on_failure: b.retry_on_failure,
            max_retries: b.max_retries as i32,
            retry_delay_seconds: b.retry_delay_seconds as i32,
            allow_concurrent: b.allow_concurrent,
            end_date: b.end_date,
            max_executions: b.max_executions.map(|n| n as i32),
            tags: &b.tags,
            next_run_at: next,
        },
        SOURCE,
    )
    .await
    .map_err(schedule_error)?;
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

/// Changes a schedule; a new timing starts over from now.
#[utoipa::path(
    patch,
    path = "/scheduled-actions/{action_id}",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = ACTION, body = Object),
        (status = 400, description = "No updates provided, or a field the schedule needs is missing", body = Detail),
        (status = 404, description = "No such scheduled action", body = Detail),
    ),
)]
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
    definition::update(
        &tx,
        id,
        &Definition {
            name: &name,
            description: description.as_deref(),
            goal: &goal,
            timing: &timing,
            timezone: &tz,
            missed_run_policy: &policy,
            action_type: &action_type,
            action_config: &config,
            metadata: &metadata,
            max_steps,
            timeout_seconds,
            retry_on_failure,
            max_retries,
            retry_delay_seconds,
            allow_concurrent,
            end_date,
            max_executions,
            tags: &tags,
            next_run_at: next,
        },
        &status,
        SOURCE,
    )
    .await
    .map_err(schedule_error)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(fetch(&state, id).await?))
}

/// Pauses an active schedule.
#[utoipa::path(
    post,
    path = "/scheduled-actions/{action_id}/pause",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    responses(
        (status = 200, description = "`{status: paused, action_id}`", body = StatusChange),
        (status = 404, description = "No such active scheduled action", body = Detail),
    ),
)]
pub(super) async fn pause(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !definition::pause(&tx, id, SOURCE)
        .await
        .map_err(schedule_error)?
    {
        return Err(ApiError::NotFound(format!(
            "Scheduled action {id} not found or not active"
        )));
    }
    tx.commit().await?;
    Ok(changed("paused", id))
}

/// Resumes a paused schedule.
#[utoipa::path(
    post,
    path = "/scheduled-actions/{action_id}/resume",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    responses(
        (status = 200, description = "`{status: active, action_id}`", body = StatusChange),
        (status = 404, description = "No such paused scheduled action", body = Detail),
    ),
)]
pub(super) async fn resume(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if definition::resume(&tx, id, SOURCE)
        .await
        .map_err(schedule_error)?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "Scheduled action {id} not found or not paused"
        )));
    }
    tx.commit().await?;
    Ok(changed("active", id))
}

/// Runs a schedule now (a run and its job; an executor runs it).
#[utoipa::path(
    post,
    path = "/scheduled-actions/{action_id}/trigger",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    responses(
        (status = 200, description = "`{status: triggered, action_id}`", body = StatusChange),
        (status = 404, description = "No such scheduled action", body = Detail),
    ),
)]
pub(super) async fn trigger(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let run = trigger_now(&tx, id, SOURCE)
        .await
        .map_err(ApiError::internal)?;
    if run.is_none() {
        return Err(not_found(id));
    }
    tx.commit().await?;
    Ok(changed("triggered", id))
}

/// Deletes a schedule and its runs.
#[utoipa::path(
    delete,
    path = "/scheduled-actions/{action_id}",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    responses(
        (status = 200, description = "`{status: deleted, action_id}`", body = StatusChange),
        (status = 404, description = "No such scheduled action", body = Detail),
    ),
)]
pub(super) async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !definition::delete(&tx, id, SOURCE)
        .await
        .map_err(schedule_error)?
    {
        return Err(not_found(id));
    }
    tx.commit().await?;
    Ok(changed("deleted", id))
}
