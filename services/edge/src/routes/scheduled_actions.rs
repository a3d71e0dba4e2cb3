//! `/scheduled-actions` (contract §2.10): schedules the scheduler service fires. Every change
//! is one transaction on `circle.scheduled_actions` with its `scheduled_action.*` event, so
//! it takes effect at once on every scheduler instance (they claim from the table under row
//! locks, and a trigger wakes them when a schedule may be due earlier). `trigger` fires a run
//! right here (run row, dispatch job and event in one transaction); an executor runs it.
//!
//! Fixed from the earlier implementation (§9.3/9.4): trigger really runs, pause/resume/update
//! and delete are not cached anywhere, PATCH returns the updated schedule; an invalid cron
//! expression or time zone is a 422 naming the problem, not a schedule that never fires.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use gathering_db::tokio_postgres::types::FromSql;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_events::publish_in;
use gathering_schedule::action::{self, ActionType};
use gathering_schedule::store::{action_event, trigger_now};
use gathering_schedule::{MissedRunPolicy, ScheduleError, ScheduleType, Timing, TimingFields};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::state::AppState;

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
/// A `once` time may be this far in the past (clock skew, a slow client); it then runs now.
const ONCE_PAST_TOLERANCE: TimeDelta = TimeDelta::seconds(60);
const MAX_TEXT: usize = 20_000;
const MAX_TAGS: usize = 50;

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
        other => ApiError::internal(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Body parsing
// ---------------------------------------------------------------------------------------------

/// A timestamp as clients send them: RFC 3339 with an offset, or naive (taken as UTC, as
/// Pydantic clients often send).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
            .map(|n| n.and_utc())
        })
}

fn flexible_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(s) => parse_time(s.trim()).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{}' is not a date-time (use ISO 8601, e.g. 2030-01-31T09:00:00Z)",
                s.chars().take(60).collect::<String>()
            ))
        }),
    }
}

/// `Some(None)` when the field is present as `null` (clears it), `None` when absent.
fn nullable_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    flexible_time(d).map(Some)
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct CreateBody {
    agent_id: i64,
    name: String,
    goal: String,
    #[serde(default = "default_type")]
    schedule_type: String,
    cron_expression: Option<String>,
    interval_seconds: Option<i64>,
    event_trigger: Option<String>,
    #[serde(default, deserialize_with = "flexible_time")]
    next_run_at: Option<DateTime<Utc>>,
    circle_id: Option<i64>,
    description: Option<String>,
    #[serde(default = "default_max_steps")]
    max_steps: i64,
    #[serde(default = "default_timeout")]
    timeout_seconds: i64,
    #[serde(default = "yes")]
    retry_on_failure: bool,
    #[serde(default = "default_retries")]
    max_retries: i64,
    #[serde(default = "default_retry_delay")]
    retry_delay_seconds: i64,
    #[serde(default)]
    allow_concurrent: bool,
    #[serde(default, deserialize_with = "flexible_time")]
    start_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "flexible_time")]
    end_date: Option<DateTime<Utc>>,
    max_executions: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "empty_object")]
    metadata: Value,
    // Beyond the contract's body: what the action does, and how time is read.
    #[serde(default = "default_action")]
    action_type: String,
    #[serde(default = "empty_object")]
    action_config: Value,
    timezone: Option<String>,
    missed_run_policy: Option<String>,
}

fn default_type() -> String {
    "cron".into()
}
fn default_action() -> String {
    "run_task".into()
}
fn default_max_steps() -> i64 {
    50
}
fn default_timeout() -> i64 {
    3600
}
fn default_retries() -> i64 {
    3
}
fn default_retry_delay() -> i64 {
    300
}
fn yes() -> bool {
    true
}
fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Settings shared by create and update, checked in one place.
struct Settings<'a> {
    name: Option<&'a str>,
    goal: Option<&'a str>,
    description: Option<&'a str>,
    max_steps: Option<i64>,
    timeout_seconds: Option<i64>,
    max_retries: Option<i64>,
    retry_delay_seconds: Option<i64>,
    max_executions: Option<Option<i64>>,
    tags: Option<&'a [String]>,
}

fn check_settings(s: &Settings<'_>) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if let Some(name) = s.name {
        v.check(
            !name.trim().is_empty() && name.chars().count() <= 255,
            "name",
            "name must be 1 to 255 characters",
        );
    }
    if let Some(goal) = s.goal {
        v.check(
            goal.len() <= MAX_TEXT,
            "goal",
            "goal is too long (20000 bytes at most)",
        );
    }
    if let Some(d) = s.description {
        v.check(
            d.len() <= MAX_TEXT,
            "description",
            "description is too long (20000 bytes at most)",
        );
    }
    if let Some(n) = s.max_steps {
        v.check(
            (1..=500).contains(&n),
            "max_steps",
            "max_steps must be 1 to 500",
        );
    }
    if let Some(n) = s.timeout_seconds {
        v.check(
            (60..=86_400).contains(&n),
            "timeout_seconds",
            "timeout_seconds must be 60 to 86400",
        );
    }
    if let Some(n) = s.max_retries {
        v.check(
            (0..=100).contains(&n),
            "max_retries",
            "max_retries must be 0 to 100",
        );
    }
    if let Some(n) = s.retry_delay_seconds {
        v.check(
            (0..=86_400).contains(&n),
            "retry_delay_seconds",
            "retry_delay_seconds must be 0 to 86400",
        );
    }
    if let Some(Some(n)) = s.max_executions {
        v.check(
            (1..=i64::from(i32::MAX)).contains(&n),
            "max_executions",
            "max_executions must be at least 1",
        );
    }
    if let Some(tags) = s.tags {
        v.check(
            tags.len() <= MAX_TAGS
                && tags
                    .iter()
                    .all(|t| !t.is_empty() && t.chars().count() <= 100),
            "tags",
            "at most 50 tags of 1 to 100 characters",
        );
    }
    v.finish()
}

/// The action's settings, and for `run_task` that there is a goal to work on.
fn check_action(
    kind: &str,
    config: &Value,
    metadata: &Value,
    goal: &str,
) -> Result<ActionType, ApiError> {
    let action = ActionType::parse(kind).map_err(schedule_error)?;
    action::validate(action, config, metadata).map_err(schedule_error)?;
    if action == ActionType::RunTask
        && goal.trim().is_empty()
        && config
            .get("goal")
            .and_then(Value::as_str)
            .is_none_or(|g| g.trim().is_empty())
    {
        return Err(ApiError::Validation(vec![FieldError::body(
            "goal",
            "goal must not be empty for a run_task action",
        )]));
    }
    Ok(action)
}

/// Checks dates against each other and against the first due time; returns the first due
/// time (`next_run_at`), `None` for event schedules.
fn first_due(
    timing: &Timing,
    now: DateTime<Utc>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let field = |f: &str, m: &str| Err(ApiError::Validation(vec![FieldError::body(f, m)]));
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return field("end_date", "end_date is before start_date");
    }
    if end.is_some_and(|e| e < now) {
        return field("end_date", "end_date is in the past");
    }
    if let Timing::Once { at } = timing
        && *at < now - ONCE_PAST_TOLERANCE
    {
        return field("next_run_at", "next_run_at is in the past");
    }
    let first = timing.first_due(now, start);
    if timing.schedule_type() != ScheduleType::Event {
        match first {
            None => return field("cron_expression", "the schedule has no future due time"),
            Some(f) if end.is_some_and(|e| f > e) => {
                return field("end_date", "end_date is before the first due time");
            }
            _ => {}
        }
    }
    Ok(first)
}

/// The body's value when it has one, else the stored column's.
fn or_stored<'a, T: FromSql<'a>>(given: Option<T>, cur: &'a Row, col: &str) -> Result<T, PgError> {
    match given {
        Some(v) => Ok(v),
        None => cur.try_get(col),
    }
}

async fn db_now(client: &impl gathering_db::GenericClient) -> Result<DateTime<Utc>, ApiError> {
    Ok(client.query_one("SELECT now()", &[]).await?.try_get(0)?)
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    agent_id: Option<i64>,
}

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

async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(fetch(&state, id.into_inner()).await?))
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

async fn create(
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

/// The columns a timing is stored in: cron expression, interval, event kind.
fn timing_columns(t: &Timing) -> (Option<String>, Option<i32>, Option<String>) {
    match t {
        Timing::Cron { expr, .. } => (Some(expr.source().to_owned()), None, None),
        Timing::Interval { every } => (None, Some(every.num_seconds() as i32), None),
        Timing::Once { .. } => (None, None, None),
        Timing::Event { kind } => (None, None, Some(kind.clone())),
    }
}

#[derive(Deserialize)]
struct UpdateBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    goal: Option<String>,
    cron_expression: Option<String>,
    interval_seconds: Option<i64>,
    max_steps: Option<i64>,
    timeout_seconds: Option<i64>,
    retry_on_failure: Option<bool>,
    max_retries: Option<i64>,
    allow_concurrent: Option<bool>,
    #[serde(default, deserialize_with = "nullable_time")]
    end_date: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    max_executions: Option<Option<i64>>,
    tags: Option<Vec<String>>,
    // Beyond the contract's body.
    retry_delay_seconds: Option<i64>,
    event_trigger: Option<String>,
    #[serde(default, deserialize_with = "flexible_time")]
    next_run_at: Option<DateTime<Utc>>,
    timezone: Option<String>,
    missed_run_policy: Option<String>,
    action_type: Option<String>,
    action_config: Option<Value>,
    metadata: Option<Value>,
}

impl UpdateBody {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.goal.is_none()
            && self.cron_expression.is_none()
            && self.interval_seconds.is_none()
            && self.max_steps.is_none()
            && self.timeout_seconds.is_none()
            && self.retry_on_failure.is_none()
            && self.max_retries.is_none()
            && self.allow_concurrent.is_none()
            && self.end_date.is_none()
            && self.max_executions.is_none()
            && self.tags.is_none()
            && self.retry_delay_seconds.is_none()
            && self.event_trigger.is_none()
            && self.next_run_at.is_none()
            && self.timezone.is_none()
            && self.missed_run_policy.is_none()
            && self.action_type.is_none()
            && self.action_config.is_none()
            && self.metadata.is_none()
    }

    fn touches_timing(&self) -> bool {
        self.cron_expression.is_some()
            || self.interval_seconds.is_some()
            || self.event_trigger.is_some()
            || self.next_run_at.is_some()
            || self.timezone.is_some()
    }
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

async fn update(
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
    let tz_raw: String = or_stored(b.timezone.clone(), &cur, "timezone")?;
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
    let mut status: String = cur.try_get("status")?;
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
            &tz.name(),
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

async fn pause(
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

async fn resume(
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

async fn trigger(
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

async fn delete(
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

#[derive(Deserialize)]
struct RunsQuery {
    #[serde(default = "default_runs_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_runs_limit() -> i64 {
    20
}

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
