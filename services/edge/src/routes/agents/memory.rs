//! `POST /agents/{id}/memories` and `…/memories/recall`: an agent's long-term memory through
//! `gathering_agents::memory` — embedded by the LLM gateway when it can, recalled by vector
//! similarity then, by text otherwise; the recall says which (`method`).

use actix_web::{HttpResponse, web};
use chrono::Utc;
use gathering_agents::memory::{self, MEMORY_TYPES, NewMemory, Query, Scope};
use serde::Deserialize;
use serde_json::json;

use super::{memory_error, require};
use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::openapi::Detail;
use crate::routes::catalogue::input::text_ok;
use crate::routes::catalogue::rows::iso_z;
use crate::state::AppState;

/// Longest memory, in characters (the runtime's own limit).
const CONTENT_MAX: usize = 100_000;
/// Longest recall query, in characters.
const QUERY_MAX: usize = 10_000;
/// The similarity a recalled memory needs, as in the runtime's own recall for a chat.
const RECALL_THRESHOLD: f64 = 0.3;

fn learning() -> String {
    "learning".into()
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RememberBody {
    content: String,
    #[serde(default = "learning")]
    memory_type: String,
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/memories",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = RememberBody,
    responses(
        (status = 201, description = "201 `{id, content, memory_type, created_at}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn remember(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RememberBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let b = body.into_inner();
    Violations::new()
        .check(
            !b.content.trim().is_empty() && text_ok(&b.content, CONTENT_MAX),
            "content",
            "content must be 1 to 100000 characters",
        )
        .check(
            MEMORY_TYPES.contains(&b.memory_type.as_str()),
            "memory_type",
            "memory_type must be one of fact, preference, context, decision, error, feedback, learning",
        )
        .finish()?;
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let stored = memory::remember(
        &client,
        Some(&state.agents.llm),
        &[NewMemory {
            scope: Scope::Agent(id),
            content: b.content.clone(),
            memory_type: b.memory_type.clone(),
            key: None,
            tags: Vec::new(),
            importance: 0.5,
            source_type: Some("api".into()),
        }],
    )
    .await
    .map_err(memory_error)?;
    let memory_id = stored
        .first()
        .map(|s| s.id)
        .ok_or_else(|| ApiError::internal("memory not stored"))?;
    Ok(HttpResponse::Created().json(json!({
        "id": memory_id,
        "content": b.content,
        "memory_type": b.memory_type,
        "created_at": iso_z(Utc::now()),
    })))
}

fn five() -> i64 {
    5
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecallBody {
    query: String,
    #[serde(default = "five")]
    limit: i64,
    memory_types: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/memories/recall",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = RecallBody,
    responses(
        (status = 200, description = "`{memories[str], query}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn recall(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RecallBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let b = body.into_inner();
    let types = b.memory_types.unwrap_or_default();
    Violations::new()
        .check(
            !b.query.trim().is_empty() && text_ok(&b.query, QUERY_MAX),
            "query",
            "query must be 1 to 10000 characters",
        )
        .check((1..=20).contains(&b.limit), "limit", "limit must be 1 to 20")
        .check(
            types.len() <= MEMORY_TYPES.len()
                && types.iter().all(|t| MEMORY_TYPES.contains(&t.as_str())),
            "memory_types",
            "memory_types must be among fact, preference, context, decision, error, feedback, learning",
        )
        .finish()?;
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let recall = memory::recall(
        &client,
        Some(&state.agents.llm),
        &Query {
            scope: Scope::Agent(id),
            text: &b.query,
            limit: b.limit,
            threshold: RECALL_THRESHOLD,
            types: &types,
            tags: &[],
        },
    )
    .await
    .map_err(memory_error)?;
    let memories: Vec<String> = recall.memories.into_iter().map(|m| m.value).collect();
    Ok(HttpResponse::Ok().json(json!({
        "memories": memories,
        "query": b.query,
        "method": recall.method,
    })))
}
