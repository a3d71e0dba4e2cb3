//! `/agents-db`: agents as the database views show them (`public.agent_dashboard`,
//! `agent.agents_full`), the same rows `/agents` writes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::rows;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::openapi::Detail;
use crate::state::AppState;

const LIST_SQL: &str = "
SELECT id, name, provider, model, status, is_active, tasks_completed, reviews_done,
       approval_rate, average_quality_score, last_active_at, persona_name, persona_role,
       memory_count, message_count, circle_count
FROM public.agent_dashboard
ORDER BY id";

const GET_SQL: &str = "
SELECT a.id, a.name, a.model_id, a.model_name, a.model_alias, a.provider_name, a.persona_id,
       a.persona_name, a.persona_role, a.system_prompt, a.traits, a.communication_style,
       a.specializations, a.languages, a.motto, a.temperature, a.max_tokens, a.can_review,
       a.review_strictness, a.tasks_completed, a.reviews_done, a.approval_rate,
       a.average_quality_score, a.is_active, a.status, a.last_active_at, a.created_at,
       a.updated_at, a.context_window, a.extended_thinking, a.vision,
       a.pricing_in::float8 AS pricing_in, a.pricing_out::float8 AS pricing_out,
       (SELECT count(*) FROM memory.memories mm WHERE mm.agent_id = a.id AND mm.is_active) AS memory_count,
       (SELECT count(*) FROM communication.chat_history ch WHERE ch.agent_id = a.id) AS message_count,
       (SELECT count(*) FROM circle.members cm WHERE cm.agent_id = a.id AND cm.is_active) AS circle_count
FROM agent.agents_full a
WHERE a.id = $1";

#[utoipa::path(
    get,
    path = "/agents-db",
    responses(
        (status = 200, description = "`{agents[row], total}` from `public.agent_dashboard`. Row: `id, name, provider, model (= model_alias), status, is_active, tasks_completed, reviews_done, approval_rate, average_quality_score, last_active_at, persona_name, persona_role, memory_count, message_count, circle_count`", body = Object),
    ),
)]
pub async fn list(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let agents = rows::all_to_json(&client.query(&stmt, &[]).await?)?;
    Ok(HttpResponse::Ok().json(json!({"total": agents.len(), "agents": agents})))
}

#[utoipa::path(
    get,
    path = "/agents-db/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`agent.agents_full` + `memory_count, message_count, circle_count`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(GET_SQL).await?;
    let row = client
        .query_opt(&stmt, &[&id.into_inner()])
        .await?
        .ok_or_else(|| ApiError::NotFound("Agent not found".into()))?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}
