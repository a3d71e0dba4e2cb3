//! `/circles` (contract §2.5): circles, members, tasks, reviews, conflicts and metrics, all
//! persisted (the earlier implementation kept tasks, conflicts and metrics in one process's
//! memory), so any edge answers any call. The rules live in `gathering-circles`; executors do
//! and review the work. `max_concurrent_tasks` (ignored upstream) is honoured: the circle's
//! work slots. Beyond the contract: `POST …/tasks/{id}/assign?agent_id=` (a human assigns or
//! reassigns, e.g. after an escalation), `POST …/conflicts/{id}/resolve`, `project_id`,
//! `description` and `max_review_rounds` on create, `resources` on task create, and in
//! `CircleDetail.agents[]` the member's circle role (upstream put the model there).

use actix_web::{HttpResponse, web};
use gathering_circles::circles::{NewCircle, NewMember};
use gathering_circles::error::Violation;
use gathering_circles::{CircleError, circles, conflicts, input, metrics};
use serde::Deserialize;
use serde_json::json;

mod work;

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    delete,
    start,
    stop,
    add_agent,
    remove_agent,
    work::list_tasks,
    work::create_task,
    work::get_task,
    work::submit,
    work::approve,
    work::reject,
    work::assign,
    list_conflicts,
    resolve_conflict,
    metrics_route,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/circles", web::get().to(list))
        .route("/circles", web::post().to(create))
        .route("/circles/{name}", web::get().to(get))
        .route("/circles/{name}", web::delete().to(delete))
        .route("/circles/{name}/start", web::post().to(start))
        .route("/circles/{name}/stop", web::post().to(stop))
        .route("/circles/{name}/agents", web::post().to(add_agent))
        .route(
            "/circles/{name}/agents/{agent_id}",
            web::delete().to(remove_agent),
        )
        .route("/circles/{name}/tasks", web::get().to(work::list_tasks))
        .route("/circles/{name}/tasks", web::post().to(work::create_task))
        .route(
            "/circles/{name}/tasks/{task_id}",
            web::get().to(work::get_task),
        )
        .route(
            "/circles/{name}/tasks/{task_id}/submit",
            web::post().to(work::submit),
        )
        .route(
            "/circles/{name}/tasks/{task_id}/approve",
            web::post().to(work::approve),
        )
        .route(
            "/circles/{name}/tasks/{task_id}/reject",
            web::post().to(work::reject),
        )
        .route(
            "/circles/{name}/tasks/{task_id}/assign",
            web::post().to(work::assign),
        )
        .route("/circles/{name}/conflicts", web::get().to(list_conflicts))
        .route(
            "/circles/{name}/conflicts/{conflict_id}/resolve",
            web::post().to(resolve_conflict),
        )
        .route("/circles/{name}/metrics", web::get().to(metrics_route));
}

/// Circle errors in the contract's shapes.
pub(crate) fn circle_error(e: CircleError) -> ApiError {
    match e {
        CircleError::CircleNotFound(_)
        | CircleError::TaskNotFound(_)
        | CircleError::AgentNotFound(_)
        | CircleError::ConversationNotFound(_)
        | CircleError::ConflictNotFound(_)
        | CircleError::Missing(_) => ApiError::NotFound(e.to_string()),
        CircleError::Exists(m) => ApiError::Conflict(m),
        CircleError::BadRequest(m) => ApiError::BadRequest(m),
        CircleError::Limit(m) => ApiError::TooManyRequests(m),
        CircleError::Invalid(v) => ApiError::Validation(v.into_iter().map(field).collect()),
        CircleError::Agent(e) => crate::routes::chat::agent_error(e),
        other => ApiError::internal(other),
    }
}

pub(crate) fn field(v: Violation) -> FieldError {
    FieldError::at(v.place, &v.field, v.msg)
}

pub(crate) fn invalid(place: &str, f: &str, msg: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::at(place, f, msg)])
}

/// A circle name from the path: anything longer than a name can be is simply not found.
pub(crate) fn circle_path(name: &str) -> Result<&str, ApiError> {
    if name.is_empty() || name.chars().count() > input::MAX_NAME {
        return Err(ApiError::NotFound(format!(
            "Circle '{}' not found",
            name.chars().take(100).collect::<String>()
        )));
    }
    Ok(name)
}

#[utoipa::path(
    get,
    path = "/circles",
    responses(
        (status = 200, description = "`{circles[Circle], total}`", body = Object),
    ),
)]
async fn list(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let c = state.pool.get().await?;
    let circles = circles::list(&c).await.map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"total": circles.len(), "circles": circles})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CreateBody {
    name: String,
    require_review: Option<bool>,
    auto_route: Option<bool>,
    max_concurrent_tasks: Option<i64>,
    project_id: Option<i64>,
    display_name: Option<String>,
    description: Option<String>,
    max_review_rounds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/circles",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 CircleDetail", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut errors = Vec::new();
    let name = input::circle_name(&b.name).map_err(|m| errors.push(FieldError::body("name", m)));
    let max = b.max_concurrent_tasks.unwrap_or(5);
    if !(1..=100).contains(&max) {
        errors.push(FieldError::body(
            "max_concurrent_tasks",
            "Input should be between 1 and 100",
        ));
    }
    if b.max_review_rounds.is_some_and(|r| !(1..=20).contains(&r)) {
        errors.push(FieldError::body(
            "max_review_rounds",
            "Input should be between 1 and 20",
        ));
    }
    if b.display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200)
    {
        errors.push(FieldError::body(
            "display_name",
            "String should have at most 200 characters",
        ));
    }
    if b.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 5000)
    {
        errors.push(FieldError::body(
            "description",
            "String should have at most 5000 characters",
        ));
    }
    let (Ok(name), true) = (name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let new = NewCircle {
        name,
        display_name: b.display_name,
        description: b.description,
        require_review: b.require_review.unwrap_or(true),
        auto_route: b.auto_route.unwrap_or(true),
        max_concurrent_tasks: max as i32,
        project_id: b.project_id,
        max_review_rounds: b.max_review_rounds.map(|r| r as i32),
        owner: Some(user.0.sub.clone()),
    };
    let out = circles::create(&state.circles, &new)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(
    get,
    path = "/circles/{name}",
    params(("name" = String, Path, description = "Name")),
    responses(
        (status = 200, description = "CircleDetail", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let c = state.pool.get().await?;
    let out = circles::detail(&c, circle_path(&name)?)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(
    delete,
    path = "/circles/{name}",
    params(("name" = String, Path, description = "Name")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    circles::delete(&state.circles, circle_path(&name)?)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/circles/{name}/start",
    params(("name" = String, Path, description = "Name")),
    responses(
        (status = 200, description = "`{status: started|already_running}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn start(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let status = circles::start(&state.circles, circle_path(&name)?)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": status})))
}

#[utoipa::path(
    post,
    path = "/circles/{name}/stop",
    params(("name" = String, Path, description = "Name")),
    responses(
        (status = 200, description = "`{status: stopped|already_stopped}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn stop(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let status = circles::stop(&state.circles, circle_path(&name)?)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": status})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AddAgentQuery {
    agent_id: i64,
    agent_name: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    competencies: Option<String>,
    can_review: Option<String>,
    role: Option<String>,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/agents",
    params(("name" = String, Path, description = "Name"), AddAgentQuery),
    responses(
        (status = 200, description = "`{status:\"added\", agent_id}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn add_agent(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
    q: web::Query<AddAgentQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let q = q.into_inner();
    let mut errors = Vec::new();
    // The agent comes from the database; these descriptive parameters are only bounded.
    for (f, v) in [
        ("agent_name", &q.agent_name),
        ("provider", &q.provider),
        ("model", &q.model),
    ] {
        if v.as_ref().is_some_and(|s| s.chars().count() > 200) {
            errors.push(FieldError::query(
                f,
                "String should have at most 200 characters",
            ));
        }
    }
    let competencies = input::csv_labels(q.competencies.as_deref())
        .map_err(|m| errors.push(FieldError::query("competencies", m)));
    let can_review = input::csv_labels(q.can_review.as_deref())
        .map_err(|m| errors.push(FieldError::query("can_review", m)));
    let roles = ["lead", "member", "specialist", "reviewer", "observer"];
    if q.role.as_deref().is_some_and(|r| !roles.contains(&r)) {
        errors.push(FieldError::query(
            "role",
            format!("Input should be one of {}", roles.join(", ")),
        ));
    }
    let (Ok(competencies), Ok(can_review), true) = (competencies, can_review, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };
    let member = NewMember {
        agent_id: q.agent_id,
        role: q.role,
        competencies,
        can_review,
    };
    circles::add_member(&state.circles, circle_path(&name)?, &member, false)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "added", "agent_id": q.agent_id})))
}

#[utoipa::path(
    delete,
    path = "/circles/{name}/agents/{agent_id}",
    params(("name" = String, Path, description = "Name"), ("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{status:\"removed\", agent_id}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn remove_agent(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (name, agent_id) = path.into_inner();
    circles::remove_member(&state.circles, circle_path(&name)?, agent_id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "removed", "agent_id": agent_id})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConflictsQuery {
    resolved: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/circles/{name}/conflicts",
    params(("name" = String, Path, description = "Name"), ConflictsQuery),
    responses(
        (status = 200, description = "`{conflicts[{id, type, resource, agents[], detected_at, resolved}], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn list_conflicts(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
    q: web::Query<ConflictsQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let list = conflicts::list(&state.circles, circle_path(&name)?, q.resolved)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"total": list.len(), "conflicts": list})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ResolveBody {
    resolution: String,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/conflicts/{conflict_id}/resolve",
    params(("name" = String, Path, description = "Name"), ("conflict_id" = i64, Path, description = "Conflict id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn resolve_conflict(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
    body: web::Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, conflict_id) = path.into_inner();
    let mut v = Vec::new();
    input::text(
        "resolution",
        &body.resolution,
        true,
        input::MAX_COMMENTS,
        &mut v,
    );
    if !v.is_empty() {
        return Err(ApiError::Validation(v.into_iter().map(field).collect()));
    }
    let out = conflicts::resolve(
        &state.circles,
        circle_path(&name)?,
        conflict_id,
        body.resolution.trim(),
        &user.0.sub,
    )
    .await
    .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(
    get,
    path = "/circles/{name}/metrics",
    params(("name" = String, Path, description = "Name")),
    responses(
        (status = 200, description = "`{agents[{agent_id, agent_name, tasks_completed, tasks_failed, current_workload, approval_rate, average_quality_score}], total_tasks, pending_tasks, active_tasks, completed_tasks, failed_tasks}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn metrics_route(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let out = metrics::metrics(&state.circles, circle_path(&name)?)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(out))
}
