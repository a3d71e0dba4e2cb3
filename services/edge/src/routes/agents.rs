//! `/agents` (contract §2.3, except `POST /agents/{id}/chat`, which lives in `chat`): agents
//! persisted in `agent.agents` — the same rows `/agents-db` reads, none only in memory — with
//! their persona, model, session, skills and memories.

mod memory;
mod session;
mod skills;
mod view;
mod write;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    session::history,
    status,
    memory::remember,
    memory::recall,
    session::track_file,
    session::set_task,
    session::clear_task,
    skills::get,
    skills::put,
    skills::add,
    skills::remove,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/agents", web::get().to(list))
        .route("/agents", web::post().to(create))
        .route("/agents/{agent_id}", web::get().to(get))
        .route("/agents/{agent_id}", web::patch().to(update))
        .route("/agents/{agent_id}", web::delete().to(delete))
        .route(
            "/agents/{agent_id}/history",
            web::get().to(session::history),
        )
        .route("/agents/{agent_id}/status", web::get().to(status))
        .route(
            "/agents/{agent_id}/memories",
            web::post().to(memory::remember),
        )
        .route(
            "/agents/{agent_id}/memories/recall",
            web::post().to(memory::recall),
        )
        .route(
            "/agents/{agent_id}/session/track-file",
            web::post().to(session::track_file),
        )
        .route(
            "/agents/{agent_id}/session/set-task",
            web::post().to(session::set_task),
        )
        .route(
            "/agents/{agent_id}/session/task",
            web::delete().to(session::clear_task),
        )
        .route("/agents/{agent_id}/skills", web::get().to(skills::get))
        .route("/agents/{agent_id}/skills", web::put().to(skills::put))
        .route(
            "/agents/{agent_id}/skills/{skill_name}",
            web::post().to(skills::add),
        )
        .route(
            "/agents/{agent_id}/skills/{skill_name}",
            web::delete().to(skills::remove),
        );
}

/// The contract's 404 for an unknown agent.
pub(super) fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Agent {id} not found"))
}

/// 404 unless the agent exists.
pub(super) async fn require<C: gathering_db::GenericClient>(
    c: &C,
    id: i64,
) -> Result<(), ApiError> {
    let stmt = c
        .prepare_cached("SELECT 1 FROM agent.agents WHERE id = $1")
        .await?;
    match c.query_opt(&stmt, &[&id]).await? {
        Some(_) => Ok(()),
        None => Err(not_found(id)),
    }
}

/// Memory-layer failures: invalid input is the caller's (422), the rest is ours.
pub(super) fn memory_error(e: gathering_agents::AgentError) -> ApiError {
    match e {
        gathering_agents::AgentError::Invalid(m) => {
            ApiError::Validation(vec![crate::error::FieldError::body("content", m)])
        }
        gathering_agents::AgentError::NotFound(id) => not_found(id),
        other => ApiError::Internal(other.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/agents",
    responses(
        (status = 200, description = "`{agents[Agent], total}`", body = Object),
    ),
)]
async fn list(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let agents: Vec<_> = view::all(&client, &state)
        .await?
        .iter()
        .map(view::AgentView::summary)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"total": agents.len(), "agents": agents})))
}

#[utoipa::path(
    post,
    path = "/agents",
    request_body = write::CreateBody,
    responses(
        (status = 201, description = "201 AgentDetail. Upstream keeps it **in memory only** (id = max + 1)", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    _user: AuthUser,
    body: web::Json<write::CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let id = write::create(&mut client, &body).await?;
    let agent = view::one(&client, &state, id).await?;
    Ok(HttpResponse::Created().json(agent.detail(&state)))
}

#[utoipa::path(
    get,
    path = "/agents/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "AgentDetail", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let agent = view::one(&client, &state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(agent.detail(&state)))
}

#[utoipa::path(
    patch,
    path = "/agents/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = write::PatchBody,
    responses(
        (status = 200, description = "AgentDetail. Memory only", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn update(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<write::PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut client = state.pool.get().await?;
    if !write::patch(&mut client, id, &body).await? {
        return Err(not_found(id));
    }
    let agent = view::one(&client, &state, id).await?;
    Ok(HttpResponse::Ok().json(agent.detail(&state)))
}

#[utoipa::path(
    delete,
    path = "/agents/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    if !write::delete(&client, id).await? {
        return Err(not_found(id));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/agents/{agent_id}/status",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{agent_id, name, role, provider, model, is_processing, session{status, last_activity, time_since, needs_resume, working_files, pending_actions, current_task?}, skills[], tools_count, project?}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn status(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let agent = view::one(&client, &state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(agent.status(&state)))
}
