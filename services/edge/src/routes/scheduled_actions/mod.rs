//! `/scheduled-actions` (contract §2.10): schedules the scheduler service fires. Every change
//! is one transaction on `circle.scheduled_actions` with its `scheduled_action.*` event, so
//! it takes effect at once on every scheduler instance (they claim from the table under row
//! locks, and a trigger wakes them when a schedule may be due earlier). `trigger` fires a run
//! right here (run row, dispatch job and event in one transaction); an executor runs it.
//!
//! Fixed from the earlier implementation (§9.3/9.4): trigger really runs, pause/resume/update
//! and delete are not cached anywhere, PATCH returns the updated schedule; an invalid cron
//! expression or time zone is a 422 naming the problem, not a schedule that never fires.
//!
//! `mod.rs` holds the routes and the read side (rows as the contract shapes them); `body.rs`
//! parses and checks request bodies; `write.rs` holds the handlers that change a schedule.

mod body;
mod write;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_schedule::ScheduleError;
use gathering_schedule::action;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;
use write::{create, delete, pause, resume, trigger, update};

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    write::create,
    get,
    write::update,
    write::delete,
    write::pause,
    write::resume,
    write::trigger,
    runs
))]
pub(crate) struct Api;

/// The 200 description of the operations answering one such object (it names the fields).
const ACTION: &str = "The scheduled action: `id`, `agent_id`, `circle_id`, `name`, `description`, `goal`, `schedule_type`, `cron_expression`, `interval_seconds`, `event_trigger`, `status`, `max_steps`, `timeout_seconds`, `retry_on_failure`, `max_retries`, `retry_delay_seconds`, `allow_concurrent`, `start_date`, `end_date`, `max_executions`, `execution_count`, `last_run_at`, `next_run_at`, `tags`, `created_at`, `agent_name`, `circle_name`, `last_run_status`, `last_run_duration`, `successful_runs`, `failed_runs`, and beyond the contract `action_type`, `action_config`, `metadata`, `timezone`, `missed_run_policy`, `updated_at`";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/scheduled-actions", web::get().to(list))
        .route("/scheduled-actions", web::post().to(create))
        .route("/scheduled-actions/{action_id}", web::get().to(get))
        .route("/scheduled-actions/{action_id}", web::patch().to(update))
        .route("/scheduled-actions/{action_id}", web::delete().to(delete))
        .route(
            "/scheduled-actions/{action_id}/pause",
            web::post().to(pause),
        )
        .route(
            "/scheduled-actions/{action_id}/resume",
            web::post().to(resume),
        )
        .route(
            "/scheduled-actions/{action_id}/trigger",
            web::post().to(trigger),
        )
        .route("/scheduled-actions/{action_id}/runs", web::get().to(runs));
}

const STATUSES: &[&str] = &["active", "paused", "disabled", "expired"];
/// Most schedules one list returns.
const LIST_LIMIT: i64 = 1000;

// ---------------------------------------------------------------------------------------------
// Rows as the contract shapes them
// ---------------------------------------------------------------------------------------------

const GET_SQL: &str = "SELECT id, agent_id, circle_id, name, description, goal, \
    schedule_type::text AS schedule_type, cron_expression, interval_seconds, event_trigger, \
    status::text AS status, max_steps, timeout_seconds, retry_on_failure, max_retries, \
    retry_delay_seconds, allow_concurrent, start_date, end_date, max_executions, execution_count, \
    last_run_at, next_run_at, tags, created_at, agent_name, circle_name, \
    last_run_status::text AS last_run_status, last_run_duration, successful_runs, failed_runs, \
    action_type, action_config, metadata, timezone, missed_run_policy, updated_at \
    FROM public.scheduled_actions_dashboard WHERE id = $1";

const LIST_SQL: &str = "SELECT id, agent_id, circle_id, name, description, goal, \
    schedule_type::text AS schedule_type, cron_expression, interval_seconds, event_trigger, \
    status::text AS status, max_steps, timeout_seconds, retry_on_failure, max_retries, \
    retry_delay_seconds, allow_concurrent, start_date, end_date, max_executions, execution_count, \
    last_run_at, next_run_at, tags, created_at, agent_name, circle_name, \
    last_run_status::text AS last_run_status, last_run_duration, successful_runs, failed_runs, \
    action_type, action_config, metadata, timezone, missed_run_policy, updated_at \
    FROM public.scheduled_actions_dashboard \
    WHERE ($1::text IS NULL OR status::text = $1) AND ($2::int8 IS NULL OR agent_id = $2) \
    ORDER BY created_at DESC, id DESC LIMIT $3";

const RUNS_SQL: &str = "SELECT id, scheduled_action_id, background_task_id, pipeline_run_id, \
    run_number, scheduled_for, event_id, triggered_at, triggered_by, status::text AS status, \
    started_at, completed_at, result_summary, result, error_message, retry_count, duration_ms, \
    steps_executed \
    FROM circle.scheduled_action_runs WHERE scheduled_action_id = $1 \
    ORDER BY triggered_at DESC, id DESC LIMIT $2 OFFSET $3";

fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, false)))
        .unwrap_or(Value::Null)
}

fn action_json(r: &Row) -> Result<Value, PgError> {
    let config: Value = r.try_get("action_config")?;
    let metadata: Value = r.try_get("metadata")?;
    Ok(json!({
        "id": r.try_get::<_, i64>("id")?,
        "agent_id": r.try_get::<_, i64>("agent_id")?,
        "circle_id": r.try_get::<_, Option<i64>>("circle_id")?,
        "name": r.try_get::<_, String>("name")?,
        "description": r.try_get::<_, Option<String>>("description")?,
        "goal": r.try_get::<_, String>("goal")?,
        "schedule_type": r.try_get::<_, String>("schedule_type")?,
        "cron_expression": r.try_get::<_, Option<String>>("cron_expression")?,
        "interval_seconds": r.try_get::<_, Option<i32>>("interval_seconds")?,
        "event_trigger": r.try_get::<_, Option<String>>("event_trigger")?,
        "status": r.try_get::<_, String>("status")?,
        "max_steps": r.try_get::<_, i32>("max_steps")?,
        "timeout_seconds": r.try_get::<_, i32>("timeout_seconds")?,
        "retry_on_failure": r.try_get::<_, bool>("retry_on_failure")?,
        "max_retries": r.try_get::<_, i32>("max_retries")?,
        "retry_delay_seconds": r.try_get::<_, i32>("retry_delay_seconds")?,
        "allow_concurrent": r.try_get::<_, bool>("allow_concurrent")?,
        "start_date": ts(r.try_get("start_date")?),
        "end_date": ts(r.try_get("end_date")?),
        "max_executions": r.try_get::<_, Option<i32>>("max_executions")?,
        "execution_count": r.try_get::<_, i32>("execution_count")?,
        "last_run_at": ts(r.try_get("last_run_at")?),
        "next_run_at": ts(r.try_get("next_run_at")?),
        "tags": r.try_get::<_, Vec<String>>("tags")?,
        "created_at": ts(r.try_get("created_at")?),
        "agent_name": r.try_get::<_, Option<String>>("agent_name")?,
        "circle_name": r.try_get::<_, Option<String>>("circle_name")?,
        "last_run_status": r.try_get::<_, Option<String>>("last_run_status")?,
        "last_run_duration": r.try_get::<_, Option<i32>>("last_run_duration")?,
        "successful_runs": r.try_get::<_, i64>("successful_runs")?,
        "failed_runs": r.try_get::<_, i64>("failed_runs")?,
        // Beyond the contract's shape (clients ignore unknown keys).
        "action_type": r.try_get::<_, String>("action_type")?,
        "action_config": action::redacted(&config),
        "metadata": action::redacted(&metadata),
        "timezone": r.try_get::<_, String>("timezone")?,
        "missed_run_policy": r.try_get::<_, String>("missed_run_policy")?,
        "updated_at": ts(r.try_get("updated_at")?),
    }))
}

fn run_json(r: &Row) -> Result<Value, PgError> {
    let result: Option<Value> = r.try_get("result")?;
    Ok(json!({
        "id": r.try_get::<_, i64>("id")?,
        "scheduled_action_id": r.try_get::<_, i64>("scheduled_action_id")?,
        "background_task_id": r.try_get::<_, Option<i64>>("background_task_id")?,
        "run_number": r.try_get::<_, i32>("run_number")?,
        "triggered_at": ts(r.try_get("triggered_at")?),
        "triggered_by": r.try_get::<_, String>("triggered_by")?,
        "status": r.try_get::<_, String>("status")?,
        "started_at": ts(r.try_get("started_at")?),
        "completed_at": ts(r.try_get("completed_at")?),
        "result_summary": r.try_get::<_, Option<String>>("result_summary")?,
        "error_message": r.try_get::<_, Option<String>>("error_message")?,
        "retry_count": r.try_get::<_, i32>("retry_count")?,
        "duration_ms": r.try_get::<_, i32>("duration_ms")?,
        "steps_executed": r.try_get::<_, i32>("steps_executed")?,
        "scheduled_for": ts(r.try_get("scheduled_for")?),
        "pipeline_run_id": r.try_get::<_, Option<i64>>("pipeline_run_id")?,
        "event_id": r.try_get::<_, Option<i64>>("event_id")?,
        "result": result.map(|v| action::redacted(&v)),
    }))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Scheduled action {id} not found"))
}

async fn fetch(state: &AppState, id: i64) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(GET_SQL).await?;
    let row = client.query_opt(&stmt, &[&id]).await?;
    let row = row.ok_or_else(|| not_found(id))?;
    Ok(action_json(&row)?)
}

/// A schedule error as the contract wants it: a missing field is a 400 with its message, an
/// unusable one a 422 naming the field.
fn schedule_error(e: ScheduleError) -> ApiError {
    match e {
        ScheduleError::Missing { .. } => ApiError::BadRequest(e.to_string()),
        ScheduleError::Invalid { field, .. } => {
            ApiError::Validation(vec![FieldError::body(field, e.reason())])
        }
        other => ApiError::unexpected(&other),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `active`, `paused`, `disabled` or `expired`.
    status: Option<String>,
    /// Only this agent's schedules.
    agent_id: Option<i64>,
}

/// Every schedule (of a status, of an agent), newest first; at most 1000.
#[utoipa::path(
    get,
    path = "/scheduled-actions",
    params(ListQuery),
    responses((status = 200, description = "The scheduled actions (see `GET /scheduled-actions/{action_id}`)", body = Vec<Object>)),
)]
async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::query(
            "status",
            "status must be active, paused, disabled or expired",
        )]));
    }
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let rows = client
        .query(&stmt, &[&q.status, &q.agent_id, &LIST_LIMIT])
        .await?;
    let actions = rows
        .iter()
        .map(action_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(actions))
}

/// One scheduled action.
#[utoipa::path(
    get,
    path = "/scheduled-actions/{action_id}",
    params(("action_id" = i64, Path, description = "Scheduled action id")),
    responses(
        (status = 200, description = ACTION, body = Object),
        (status = 404, description = "No such scheduled action", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(fetch(&state, id.into_inner()).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// 1 to 100 (default 20).
    #[serde(default = "default_runs_limit")]
    limit: i64,
    /// 0 to 1000000 (default 0).
    #[serde(default)]
    offset: i64,
}

fn default_runs_limit() -> i64 {
    20
}

/// The schedule's runs, newest first: `id`, `scheduled_action_id`, `background_task_id`,
/// `run_number`, `triggered_at`, `triggered_by`, `status`, `started_at`, `completed_at`,
/// `result_summary`, `error_message`, `retry_count`, `duration_ms`, `steps_executed`,
/// `scheduled_for`, `pipeline_run_id`, `event_id`, `result`.
#[utoipa::path(
    get,
    path = "/scheduled-actions/{action_id}/runs",
    params(("action_id" = i64, Path, description = "Scheduled action id"), RunsQuery),
    responses(
        (status = 200, description = "The runs", body = Vec<Object>),
        (status = 404, description = "No such scheduled action", body = Detail),
    ),
)]
async fn runs(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<RunsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut v = Violations::new();
    if !(1..=100).contains(&q.limit) {
        v.push(FieldError::query("limit", "limit must be 1 to 100"));
    }
    if !(0..=1_000_000).contains(&q.offset) {
        v.push(FieldError::query("offset", "offset must be 0 to 1000000"));
    }
    v.finish()?;
    let client = state.pool.get().await?;
    if client
        .query_opt(
            "SELECT 1 FROM circle.scheduled_actions WHERE id = $1",
            &[&id],
        )
        .await?
        .is_none()
    {
        return Err(not_found(id));
    }
    let stmt = client.prepare_cached(RUNS_SQL).await?;
    let rows = client.query(&stmt, &[&id, &q.limit, &q.offset]).await?;
    let runs = rows.iter().map(run_json).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(runs))
}
