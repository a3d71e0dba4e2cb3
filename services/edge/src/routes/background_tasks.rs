//! `/background-tasks` (contract §2.9): agents working on a goal on their own, executed by the
//! executors through the job queue. Pause, resume and cancel take effect within a second
//! wherever the task runs; the number of live tasks is limited across all executors.

use actix_web::{HttpResponse, web};
use gathering_agents::tasks::{self, NewTask, TaskError};
use gathering_db::tokio_postgres::Error as PgError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, delete, pause, resume, cancel, steps,))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/background-tasks", web::get().to(list))
        .route("/background-tasks", web::post().to(create))
        .route("/background-tasks/{task_id}", web::get().to(get))
        .route("/background-tasks/{task_id}", web::delete().to(delete))
        .route("/background-tasks/{task_id}/pause", web::post().to(pause))
        .route("/background-tasks/{task_id}/resume", web::post().to(resume))
        .route("/background-tasks/{task_id}/cancel", web::post().to(cancel))
        .route("/background-tasks/{task_id}/steps", web::get().to(steps));
}

const STATUSES: &[&str] = &[
    "pending",
    "running",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "timeout",
];

pub(crate) fn task_error(e: TaskError) -> ApiError {
    match e {
        TaskError::LimitReached(n) => {
            ApiError::TooManyRequests(format!("Maximum concurrent tasks ({n}) reached"))
        }
        TaskError::AgentNotFound(id) => ApiError::NotFound(format!("Agent {id} not found")),
        TaskError::NotFound => ApiError::NotFound("Task not found".into()),
        TaskError::InvalidState(m) => ApiError::BadRequest(m),
        TaskError::Agent(e) => crate::routes::chat::agent_error(e),
    }
}

async fn row(state: &AppState, task_id: i64) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    tasks::dashboard_row(&client, task_id)
        .await
        .map_err(crate::routes::chat::agent_error)?
        .ok_or_else(|| ApiError::NotFound("Task not found".into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    status: Option<String>,
    agent_id: Option<i64>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

#[utoipa::path(
    get,
    path = "/background-tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "`{tasks[row], total, counts{status: n}}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
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
            "unknown status",
        )]));
    }
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "Input should be between 1 and 500",
        )]));
    }
    let client = state.pool.get().await?;
    let tasks: Vec<Value> = client
        .query(
            "SELECT to_jsonb(t) FROM public.background_tasks_dashboard t \
             WHERE ($1::text IS NULL OR status::text = $1) AND ($2::int8 IS NULL OR agent_id = $2) LIMIT $3",
            &[&q.status, &q.agent_id, &q.limit],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let counts: Vec<(String, i64)> = client
        .query(
            "SELECT status::text, count(*) FROM circle.background_tasks \
             WHERE ($1::int8 IS NULL OR agent_id = $1) GROUP BY status",
            &[&q.agent_id],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, PgError>>()?;
    let total: i64 = counts
        .iter()
        .filter(|(s, _)| q.status.as_deref().is_none_or(|f| f == s))
        .map(|(_, n)| n)
        .sum();
    let counts: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(s, n)| (s, Value::from(n)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"tasks": tasks, "total": total, "counts": counts})))
}

#[utoipa::path(
    get,
    path = "/background-tasks/{task_id}",
    params(("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "row", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(row(&state, path.into_inner()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CreateBody {
    agent_id: i64,
    goal: String,
    circle_id: Option<i64>,
    #[serde(default)]
    goal_context: Value,
    #[serde(default = "default_steps")]
    max_steps: i32,
    #[serde(default = "default_timeout")]
    timeout_seconds: i32,
    #[serde(default = "default_checkpoint")]
    checkpoint_interval: i32,
}

fn default_steps() -> i32 {
    50
}
fn default_timeout() -> i32 {
    3600
}
fn default_checkpoint() -> i32 {
    5
}

#[utoipa::path(
    post,
    path = "/background-tasks",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 row", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let goal_context = if b.goal_context.is_null() {
        json!({})
    } else {
        b.goal_context
    };
    Violations::new()
        .check(
            !b.goal.trim().is_empty() && b.goal.len() <= 20_000,
            "goal",
            "String should have 1 to 20000 characters",
        )
        .check(
            goal_context.is_object(),
            "goal_context",
            "Input should be a valid dictionary",
        )
        .check(
            (1..=500).contains(&b.max_steps),
            "max_steps",
            "Input should be between 1 and 500",
        )
        .check(
            (60..=86_400).contains(&b.timeout_seconds),
            "timeout_seconds",
            "Input should be between 60 and 86400",
        )
        .check(
            (1..=50).contains(&b.checkpoint_interval),
            "checkpoint_interval",
            "Input should be between 1 and 50",
        )
        .finish()?;
    let task = NewTask {
        agent_id: b.agent_id,
        goal: b.goal,
        circle_id: b.circle_id,
        goal_context,
        max_steps: b.max_steps,
        timeout_seconds: b.timeout_seconds,
        checkpoint_interval: b.checkpoint_interval,
        created_by: Some(user.0.sub.clone()),
    };
    let id = tasks::create(&state.pool, &task, state.agents_config.max_live_tasks)
        .await
        .map_err(task_error)?;
    Ok(HttpResponse::Created().json(row(&state, id).await?))
}

#[utoipa::path(
    post,
    path = "/background-tasks/{task_id}/pause",
    params(("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "`{status:\"paused\", task_id}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn pause(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    tasks::pause(&state.pool, &state.queue, id)
        .await
        .map_err(task_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "paused", "task_id": id})))
}

#[utoipa::path(
    post,
    path = "/background-tasks/{task_id}/resume",
    params(("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "`{status:\"resumed\", task_id}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn resume(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    tasks::resume(&state.pool, id).await.map_err(task_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "resumed", "task_id": id})))
}

#[utoipa::path(
    post,
    path = "/background-tasks/{task_id}/cancel",
    params(("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "`{status:\"cancelled\", task_id}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn cancel(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    tasks::cancel(&state.pool, &state.queue, id)
        .await
        .map_err(task_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "cancelled", "task_id": id})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    #[serde(default = "default_step_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_step_limit() -> i64 {
    100
}

#[utoipa::path(
    get,
    path = "/background-tasks/{task_id}/steps",
    params(("task_id" = i64, Path, description = "Task id"), Page),
    responses(
        (status = 200, description = "`{steps[step], total, task_id}`, highest `step_number` first. Step fields:", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn steps(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (limit, offset) = (q.limit.clamp(1, 1000), q.offset.max(0));
    let client = state.pool.get().await?;
    if client
        .query_opt(
            "SELECT 1 FROM circle.background_tasks WHERE id = $1",
            &[&id],
        )
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("Task not found".into()));
    }
    let rows = client
        .query(
            "SELECT to_jsonb(s), count(*) OVER () \
             FROM circle.background_task_steps s WHERE task_id = $1 \
             ORDER BY step_number DESC, id DESC LIMIT $2 OFFSET $3",
            &[&id, &limit, &offset],
        )
        .await?;
    let total: i64 = match rows.first() {
        Some(r) => r.try_get(1)?,
        None => 0,
    };
    let steps = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(HttpResponse::Ok().json(json!({"steps": steps, "total": total, "task_id": id})))
}

#[utoipa::path(
    delete,
    path = "/background-tasks/{task_id}",
    params(("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let client = state.pool.get().await?;
    tasks::delete(&client, id).await.map_err(task_error)?;
    Ok(HttpResponse::NoContent().finish())
}
