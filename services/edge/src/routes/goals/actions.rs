//! The goal actions of §2.11: lifecycle (start, complete, fail, pause, resume, progress),
//! decomposition, and dependencies. Each returns the goal (or the contract's small object).
//!
//! A goal executed by a background task keeps the task in step: pausing the goal pauses the
//! task, resuming it resumes the task, completing or failing it by hand cancels the task. These
//! follow the goal's own committed change (best effort, logged when they fail); the task's hooks
//! then find the goal already changed and leave it alone.

use actix_web::{HttpResponse, web};
use gathering_agents::goals::decompose::{self, MAX_SUBGOALS};
use gathering_agents::goals::execution::{self, ExecuteOptions};
use gathering_agents::goals::{self, DEPENDENCY_TYPES, Transition};
use gathering_agents::tasks;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{actor, goal_error, goal_json};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

const MAX_REASON: usize = 5_000;
const MAX_SUMMARY: usize = 20_000;

fn too_long(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(ApiError::Validation(vec![FieldError::query(
            field,
            format!("String should have at most {max} characters"),
        )]));
    }
    Ok(())
}

/// The goal's background task and its status, when it has one.
async fn task_of(state: &AppState, goal: &Value) -> Option<(i64, String)> {
    let task_id = goal["background_task_id"].as_i64()?;
    let client = state.pool.get().await.ok()?;
    let row = client
        .query_opt(
            "SELECT status::text FROM circle.background_tasks WHERE id = $1",
            &[&task_id],
        )
        .await
        .ok()??;
    Some((task_id, row.try_get(0).ok()?))
}

/// Cancels live background tasks of goals that no longer need them (best effort).
pub(super) async fn cancel_tasks(state: &AppState, ids: &[i64]) {
    for id in ids {
        if let Err(e) = tasks::cancel(&state.pool, &state.queue, *id).await {
            tracing::debug!(task_id = id, error = %e, "goal's background task not cancelled");
        }
    }
}

async fn transition(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    t: Transition,
) -> Result<Value, ApiError> {
    goals::transition(&state.pool, id, t, &actor(user))
        .await
        .map_err(goal_error)?;
    goal_json(state, id).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Hand the goal to its agent as a background task.
    #[serde(default)]
    execute: bool,
    max_steps: Option<i32>,
    timeout_seconds: Option<i32>,
    checkpoint_interval: Option<i32>,
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/start",
    params(("goal_id" = i64, Path, description = "Goal id"), StartQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn start(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let q = q.into_inner();
    if !q.execute {
        return Ok(HttpResponse::Ok().json(transition(&state, &user, id, Transition::Start).await?));
    }
    let opts = ExecuteOptions {
        max_steps: q.max_steps.unwrap_or(50),
        timeout_seconds: q.timeout_seconds.unwrap_or(3600),
        checkpoint_interval: q.checkpoint_interval.unwrap_or(5),
        max_live_tasks: state.agents_config.max_live_tasks,
        created_by: Some(user.0.sub.clone()),
    };
    let mut v = Violations::new();
    for (field, ok, msg) in [
        (
            "max_steps",
            (1..=500).contains(&opts.max_steps),
            "Input should be between 1 and 500",
        ),
        (
            "timeout_seconds",
            (60..=86_400).contains(&opts.timeout_seconds),
            "Input should be between 60 and 86400",
        ),
        (
            "checkpoint_interval",
            (1..=50).contains(&opts.checkpoint_interval),
            "Input should be between 1 and 50",
        ),
    ] {
        if !ok {
            v.push(FieldError::query(field, msg));
        }
    }
    v.finish()?;
    execution::start_with_task(&state.pool, id, &opts, &actor(&user))
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(goal_json(&state, id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompleteQuery {
    result_summary: Option<String>,
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/complete",
    params(("goal_id" = i64, Path, description = "Goal id"), CompleteQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn complete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<CompleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    too_long("result_summary", &q.result_summary, MAX_SUMMARY)?;
    let t = Transition::Complete {
        result_summary: q.result_summary,
        artifacts: None,
    };
    let goal = transition(&state, &user, path.into_inner(), t).await?;
    stop_task(&state, &goal).await;
    Ok(HttpResponse::Ok().json(goal))
}

/// A goal finished by hand no longer needs its task.
async fn stop_task(state: &AppState, goal: &Value) {
    if let Some((task, status)) = task_of(state, goal).await
        && matches!(status.as_str(), "pending" | "running" | "paused")
    {
        cancel_tasks(state, &[task]).await;
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailQuery {
    reason: String,
    lessons_learned: Option<String>,
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/fail",
    params(("goal_id" = i64, Path, description = "Goal id"), FailQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn fail(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<FailQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    if q.reason.trim().is_empty() {
        return Err(ApiError::Validation(vec![FieldError::query(
            "reason",
            "String should have at least 1 character",
        )]));
    }
    too_long("reason", &Some(q.reason.clone()), MAX_REASON)?;
    too_long("lessons_learned", &q.lessons_learned, MAX_SUMMARY)?;
    let t = Transition::Fail {
        reason: q.reason,
        lessons_learned: q.lessons_learned,
    };
    let goal = transition(&state, &user, path.into_inner(), t).await?;
    stop_task(&state, &goal).await;
    Ok(HttpResponse::Ok().json(goal))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PauseQuery {
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/pause",
    params(("goal_id" = i64, Path, description = "Goal id"), PauseQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn pause(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<PauseQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    too_long("reason", &q.reason, MAX_REASON)?;
    let id = path.into_inner();
    let goal = transition(&state, &user, id, Transition::Pause { reason: q.reason }).await?;
    if let Some((task, status)) = task_of(&state, &goal).await
        && matches!(status.as_str(), "pending" | "running")
        && let Err(e) = tasks::pause(&state.pool, &state.queue, task).await
    {
        tracing::debug!(task_id = task, error = %e, "goal's background task not paused");
    }
    Ok(HttpResponse::Ok().json(goal_json(&state, id).await?))
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/resume",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn resume(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let goal = transition(&state, &user, id, Transition::Resume).await?;
    if let Some((task, status)) = task_of(&state, &goal).await
        && status == "paused"
        && let Err(e) = tasks::resume(&state.pool, task).await
    {
        tracing::debug!(task_id = task, error = %e, "goal's background task not resumed");
    }
    Ok(HttpResponse::Ok().json(goal_json(&state, id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    percent: i64,
    message: Option<String>,
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/progress",
    params(("goal_id" = i64, Path, description = "Goal id"), ProgressQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn progress(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<ProgressQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    too_long("message", &q.message, MAX_REASON)?;
    let t = Transition::Progress {
        percent: q.percent.clamp(0, 100) as i32,
        message: q.message,
    };
    Ok(HttpResponse::Ok().json(transition(&state, &user, path.into_inner(), t).await?))
}

#[derive(Deserialize)]
struct DecomposeBody {
    #[serde(default = "default_subgoals")]
    max_subgoals: i32,
}

fn default_subgoals() -> i32 {
    5
}

/// `POST /goals/{id}/decompose`; the body is optional (`max_subgoals` defaults to 5).
#[utoipa::path(
    post,
    path = "/goals/{goal_id}/decompose",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "`{goal_id, subgoal_count, subgoals}`. Uses the LLM", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn decompose(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body: DecomposeBody = if body.iter().all(u8::is_ascii_whitespace) {
        DecomposeBody {
            max_subgoals: default_subgoals(),
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Validation(vec![FieldError {
                loc: vec!["body".into()],
                msg: e.to_string(),
                kind: "value_error".into(),
            }])
        })?
    };
    if !(1..=MAX_SUBGOALS).contains(&body.max_subgoals) {
        return Err(ApiError::Validation(vec![FieldError::body(
            "max_subgoals",
            format!("Input should be between 1 and {MAX_SUBGOALS}"),
        )]));
    }
    let ids = decompose::decompose(&state.agents, id, body.max_subgoals, &actor(&user))
        .await
        .map_err(goal_error)?;
    let mut subgoals = Vec::with_capacity(ids.len());
    for sid in &ids {
        subgoals.push(goal_json(&state, *sid).await?);
    }
    Ok(HttpResponse::Ok().json(json!({
        "goal_id": id,
        "subgoal_count": subgoals.len(),
        "subgoals": subgoals,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DependencyBody {
    depends_on_id: i64,
    #[serde(default = "default_dependency_type")]
    dependency_type: String,
}

fn default_dependency_type() -> String {
    "blocks".into()
}

#[utoipa::path(
    post,
    path = "/goals/{goal_id}/dependencies",
    params(("goal_id" = i64, Path, description = "Goal id")),
    request_body = DependencyBody,
    responses(
        (status = 200, description = "the same three fields. `dependency_type` ∈ blocks|informs|enhances", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn add_dependency(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<DependencyBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let b = body.into_inner();
    if !DEPENDENCY_TYPES.contains(&b.dependency_type.as_str()) {
        return Err(ApiError::Validation(vec![FieldError::body(
            "dependency_type",
            "Input should be 'blocks', 'informs' or 'enhances'",
        )]));
    }
    goals::add_dependency(
        &state.pool,
        id,
        b.depends_on_id,
        &b.dependency_type,
        &actor(&user),
    )
    .await
    .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "goal_id": id,
        "depends_on_id": b.depends_on_id,
        "dependency_type": b.dependency_type,
    })))
}

#[utoipa::path(
    delete,
    path = "/goals/{goal_id}/dependencies/{depends_on_id}",
    params(("goal_id" = i64, Path, description = "Goal id"), ("depends_on_id" = i64, Path, description = "Depends on id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn remove_dependency(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, depends_on_id) = path.into_inner();
    goals::remove_dependency(&state.pool, id, depends_on_id, &actor(&user))
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::NoContent().finish())
}
