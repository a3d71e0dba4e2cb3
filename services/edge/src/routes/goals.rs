//! `/goals` (contract §2.11): agents' goals as trees and dependency graphs, decomposed by the
//! agent's model, executed as background tasks. The rules live in `gathering_agents::goals`
//! (shared with the agents' `goals` skill and the executor); these handlers validate input,
//! name the caller as the actor, and shape answers. Goals are rows of `public.goals_dashboard`.

mod actions;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use gathering_agents::goals::{self, Actor, GoalError, GoalPatch, ListFilter, NewGoal};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    actions::start,
    actions::complete,
    actions::fail,
    actions::pause,
    actions::resume,
    actions::progress,
    actions::decompose,
    subgoals,
    tree,
    dependencies,
    actions::add_dependency,
    actions::remove_dependency,
    dependents,
    activities,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/goals", web::get().to(list))
        .route("/goals", web::post().to(create))
        .route("/goals/{goal_id}", web::get().to(get))
        .route("/goals/{goal_id}", web::patch().to(update))
        .route("/goals/{goal_id}", web::delete().to(delete))
        .route("/goals/{goal_id}/start", web::post().to(actions::start))
        .route(
            "/goals/{goal_id}/complete",
            web::post().to(actions::complete),
        )
        .route("/goals/{goal_id}/fail", web::post().to(actions::fail))
        .route("/goals/{goal_id}/pause", web::post().to(actions::pause))
        .route("/goals/{goal_id}/resume", web::post().to(actions::resume))
        .route(
            "/goals/{goal_id}/progress",
            web::post().to(actions::progress),
        )
        .route(
            "/goals/{goal_id}/decompose",
            web::post().to(actions::decompose),
        )
        .route("/goals/{goal_id}/subgoals", web::get().to(subgoals))
        .route("/goals/{goal_id}/tree", web::get().to(tree))
        .route("/goals/{goal_id}/dependencies", web::get().to(dependencies))
        .route(
            "/goals/{goal_id}/dependencies",
            web::post().to(actions::add_dependency),
        )
        .route(
            "/goals/{goal_id}/dependencies/{depends_on_id}",
            web::delete().to(actions::remove_dependency),
        )
        .route("/goals/{goal_id}/dependents", web::get().to(dependents))
        .route("/goals/{goal_id}/activities", web::get().to(activities));
}

/// Domain errors in the contract's shapes.
pub(crate) fn goal_error(e: GoalError) -> ApiError {
    match e {
        GoalError::NotFound(m) => ApiError::NotFound(m),
        GoalError::Refused(m) => ApiError::BadRequest(m),
        GoalError::Model(m) => ApiError::BadGateway(m),
        GoalError::Task(e) => crate::routes::background_tasks::task_error(e),
        GoalError::Agent(e) => crate::routes::chat::agent_error(e),
    }
}

pub(crate) fn actor(user: &AuthUser) -> Actor {
    Actor::user(user.0.sub.clone())
}

fn violations(errors: Vec<(&'static str, String)>) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::Validation(
        errors
            .into_iter()
            .map(|(f, m)| FieldError::body(f, m))
            .collect(),
    ))
}

/// An ISO-8601 date-time (a naive one is UTC), or a date (midnight UTC).
fn parse_deadline(s: &str) -> Result<DateTime<Utc>, ApiError> {
    let s = s.trim();
    if s.len() <= 64 {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(t.and_utc());
        }
        if let Some(t) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
        {
            return Ok(t.and_utc());
        }
    }
    Err(ApiError::Validation(vec![FieldError::body(
        "deadline",
        "Input should be an ISO-8601 date-time",
    )]))
}

pub(crate) async fn goal_json(state: &AppState, id: i64) -> Result<Value, ApiError> {
    goals::get(&state.pool, id).await.map_err(goal_error)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    agent_id: Option<i64>,
    circle_id: Option<i64>,
    status: Option<String>,
    parent_id: Option<i64>,
    #[serde(default)]
    root_only: bool,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn page(limit: Option<i64>, offset: Option<i64>, default: i64) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(default);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "Input should be between 1 and 500",
        )]));
    }
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "offset",
            "Input should be between 0 and 1000000",
        )]));
    }
    Ok((limit, offset))
}

#[utoipa::path(
    get,
    path = "/goals",
    params(ListQuery),
    responses(
        (status = 200, description = "`{goals, total, counts{status: n}}`", body = Object),
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
        && !goals::STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::query(
            "status",
            "Input should be a goal status",
        )]));
    }
    let (limit, offset) = page(q.limit, q.offset, 50)?;
    let filter = ListFilter {
        agent_id: q.agent_id,
        circle_id: q.circle_id,
        status: q.status,
        parent_id: q.parent_id,
        root_only: q.root_only,
        limit,
        offset,
    };
    let (goals, total, counts) = goals::list(&state.pool, &filter)
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({"goals": goals, "total": total, "counts": counts})))
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "Goal", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(goal_json(&state, path.into_inner()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CreateBody {
    agent_id: i64,
    title: String,
    description: String,
    circle_id: Option<i64>,
    parent_id: Option<i64>,
    success_criteria: Option<String>,
    priority: Option<String>,
    deadline: Option<String>,
    estimated_hours: Option<f64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    context: Value,
    auto_complete: Option<bool>,
    max_attempts: Option<i32>,
}

#[utoipa::path(
    post,
    path = "/goals",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 Goal", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let deadline = b.deadline.as_deref().map(parse_deadline).transpose()?;
    let new = NewGoal {
        agent_id: b.agent_id,
        title: b.title,
        description: b.description,
        circle_id: b.circle_id,
        parent_id: b.parent_id,
        success_criteria: b.success_criteria,
        priority: b.priority,
        deadline,
        estimated_hours: b.estimated_hours,
        tags: b.tags,
        context: b.context,
        auto_complete: b.auto_complete,
        max_attempts: b.max_attempts,
    };
    let mut errors = new.validate();
    if new.description.trim().is_empty() {
        errors.push((
            "description",
            "String should have at least 1 character".into(),
        ));
    }
    violations(errors)?;
    let id = goals::create(&state.pool, &new, &actor(&user))
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Created().json(goal_json(&state, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PatchBody {
    title: Option<String>,
    description: Option<String>,
    success_criteria: Option<String>,
    priority: Option<String>,
    status: Option<String>,
    progress_percent: Option<i32>,
    status_message: Option<String>,
    deadline: Option<String>,
    estimated_hours: Option<f64>,
    result_summary: Option<String>,
    lessons_learned: Option<String>,
    tags: Option<Vec<String>>,
    auto_complete: Option<bool>,
    max_attempts: Option<i32>,
}

#[utoipa::path(
    patch,
    path = "/goals/{goal_id}",
    params(("goal_id" = i64, Path, description = "Goal id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "Goal", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let b = body.into_inner();
    let deadline = b.deadline.as_deref().map(parse_deadline).transpose()?;
    let patch = GoalPatch {
        title: b.title,
        description: b.description,
        success_criteria: b.success_criteria,
        priority: b.priority,
        status: b.status,
        progress_percent: b.progress_percent,
        status_message: b.status_message,
        deadline,
        estimated_hours: b.estimated_hours,
        result_summary: b.result_summary,
        lessons_learned: b.lessons_learned,
        tags: b.tags,
        auto_complete: b.auto_complete,
        max_attempts: b.max_attempts,
    };
    violations(patch.validate())?;
    goals::update(&state.pool, id, &patch, &actor(&user))
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(goal_json(&state, id).await?))
}

#[utoipa::path(
    delete,
    path = "/goals/{goal_id}",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let tasks = goals::delete(&state.pool, id, &actor(&user))
        .await
        .map_err(goal_error)?;
    actions::cancel_tasks(&state, &tasks).await;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}/subgoals",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "`{goal_id, subgoals}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn subgoals(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let subgoals = goals::subgoals(&state.pool, id).await.map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({"goal_id": id, "subgoals": subgoals})))
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}/tree",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "Goal + `subgoals[…recursive]`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn tree(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tree = goals::tree(&state.pool, path.into_inner())
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(tree))
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}/dependencies",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "`{goal_id, dependencies[Goal]}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn dependencies(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let deps = goals::dependencies(&state.pool, id)
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({"goal_id": id, "dependencies": deps})))
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}/dependents",
    params(("goal_id" = i64, Path, description = "Goal id")),
    responses(
        (status = 200, description = "`{goal_id, dependents[Goal]}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn dependents(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let deps = goals::dependents(&state.pool, id)
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({"goal_id": id, "dependents": deps})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/goals/{goal_id}/activities",
    params(("goal_id" = i64, Path, description = "Goal id"), Page),
    responses(
        (status = 200, description = "`{goal_id, activities[{id, goal_id, activity_type, description?, old_value?, new_value?, actor_type?, tokens_used, duration_ms, created_at}]}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn activities(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (limit, offset) = page(q.limit, q.offset, 50)?;
    let activities = goals::activities(&state.pool, id, limit, offset)
        .await
        .map_err(goal_error)?;
    Ok(HttpResponse::Ok().json(json!({"goal_id": id, "activities": activities})))
}
