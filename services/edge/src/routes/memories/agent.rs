//! `/memories/agents/{agent_id}/…` (contract §2.8): remember (one or a batch), recall with
//! filters and a similarity threshold, forget (a soft delete), and statistics — through
//! `gathering_agents::memory`, which embeds through the LLM gateway when it can and otherwise
//! falls back to text search, and says which.

use actix_web::{HttpResponse, web};
use gathering_agents::memory::{self, MEMORY_TYPES, NewMemory, Query, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::routes::agents::{memory_error, not_found, require};
use crate::routes::catalogue::input::{line_ok, list_ok, text_ok};
use crate::state::AppState;

/// Longest memory (characters), the runtime's own limit.
const CONTENT_MAX: usize = 100_000;
/// Most memories in one batch.
const BATCH_MAX: usize = 100;

fn fact() -> String {
    "fact".into()
}

fn half() -> f64 {
    0.5
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RememberBody {
    content: String,
    #[serde(default = "fact")]
    memory_type: String,
    key: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(default = "half")]
    importance: f64,
}

impl RememberBody {
    /// Field errors, located under `prefix` (`["body"]`, or `["body", "memories", "3"]`).
    fn check(&self, prefix: &[String], out: &mut Vec<FieldError>) {
        let mut bad = |ok: bool, field: &str, msg: &str| {
            if !ok {
                let mut loc = prefix.to_vec();
                loc.push(field.to_owned());
                out.push(FieldError {
                    loc,
                    msg: msg.to_owned(),
                    kind: "value_error".into(),
                });
            }
        };
        bad(
            !self.content.trim().is_empty() && text_ok(&self.content, CONTENT_MAX),
            "content",
            "content must be 1 to 100000 characters",
        );
        bad(
            MEMORY_TYPES.contains(&self.memory_type.as_str()),
            "memory_type",
            "memory_type must be one of fact, preference, context, decision, error, feedback, learning",
        );
        bad(
            self.key.as_deref().is_none_or(|k| line_ok(k, 1, 200)),
            "key",
            "key must be 1 to 200 characters",
        );
        bad(
            self.tags.as_deref().is_none_or(|t| list_ok(t, 50, 100)),
            "tags",
            "at most 50 tags of 1 to 100 characters",
        );
        bad(
            self.importance.is_finite() && (0.0..=1.0).contains(&self.importance),
            "importance",
            "importance must be between 0 and 1",
        );
    }

    fn to_new(&self, agent_id: i64) -> NewMemory {
        NewMemory {
            scope: Scope::Agent(agent_id),
            content: self.content.clone(),
            memory_type: self.memory_type.clone(),
            key: self.key.clone(),
            tags: self.tags.clone().unwrap_or_default(),
            importance: self.importance,
            source_type: Some("api".into()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/memories/agents/{agent_id}/remember",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = RememberBody,
    responses(
        (status = 200, description = "`{id, key (default \"auto_{id}\"), value, memory_type, similarity:null, importance}`. `memory_type` ∈ fact|preference|context|decision|error|feedback|learning", body = Object),
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
    let mut errors = Vec::new();
    body.check(&["body".to_owned()], &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let stored = memory::remember(&client, Some(&state.agents.llm), &[body.to_new(id)])
        .await
        .map_err(memory_error)?;
    let s = stored
        .first()
        .ok_or_else(|| ApiError::internal("memory not stored"))?;
    Ok(HttpResponse::Ok().json(json!({
        "id": s.id, "key": s.key, "value": body.content, "memory_type": body.memory_type,
        "similarity": null, "importance": body.importance,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BatchBody {
    memories: Vec<RememberBody>,
}

#[utoipa::path(
    post,
    path = "/memories/agents/{agent_id}/remember/batch",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = BatchBody,
    responses(
        (status = 200, description = "`{created[int], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn remember_batch(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut errors = Vec::new();
    if body.memories.len() > BATCH_MAX {
        errors.push(FieldError::body(
            "memories",
            "at most 100 memories per batch",
        ));
    }
    for (i, m) in body.memories.iter().enumerate() {
        m.check(
            &["body".into(), "memories".into(), i.to_string()],
            &mut errors,
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let news: Vec<NewMemory> = body.memories.iter().map(|m| m.to_new(id)).collect();
    let stored = memory::remember(&client, Some(&state.agents.llm), &news)
        .await
        .map_err(memory_error)?;
    let created: Vec<i64> = stored.iter().map(|s| s.id).collect();
    Ok(HttpResponse::Ok().json(json!({"created": created, "total": created.len()})))
}

fn ten() -> i64 {
    10
}

fn seven_tenths() -> f64 {
    0.7
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecallBody {
    query: String,
    memory_type: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(default = "ten")]
    limit: i64,
    #[serde(default = "seven_tenths")]
    threshold: f64,
}

#[utoipa::path(
    post,
    path = "/memories/agents/{agent_id}/recall",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = RecallBody,
    responses(
        (status = 200, description = "`{query, memories[{id, key, value, memory_type, similarity, importance}], total}`", body = Object),
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
    let mut errors = Vec::new();
    let mut bad = |ok: bool, field: &str, msg: &str| {
        if !ok {
            errors.push(FieldError::body(field, msg));
        }
    };
    bad(
        !b.query.trim().is_empty() && text_ok(&b.query, 10_000),
        "query",
        "query must be 1 to 10000 characters",
    );
    bad(
        b.memory_type
            .as_deref()
            .is_none_or(|t| MEMORY_TYPES.contains(&t)),
        "memory_type",
        "memory_type must be one of fact, preference, context, decision, error, feedback, learning",
    );
    bad(
        b.tags.as_deref().is_none_or(|t| list_ok(t, 50, 100)),
        "tags",
        "at most 50 tags of 1 to 100 characters",
    );
    bad(
        (1..=50).contains(&b.limit),
        "limit",
        "limit must be 1 to 50",
    );
    bad(
        b.threshold.is_finite() && (0.0..=1.0).contains(&b.threshold),
        "threshold",
        "threshold must be between 0 and 1",
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let types: Vec<String> = b.memory_type.into_iter().collect();
    let tags = b.tags.unwrap_or_default();
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let recall = memory::recall(
        &client,
        Some(&state.agents.llm),
        &Query {
            scope: Scope::Agent(id),
            text: &b.query,
            limit: b.limit,
            threshold: b.threshold,
            types: &types,
            tags: &tags,
        },
    )
    .await
    .map_err(memory_error)?;
    let memories: Vec<Value> = recall
        .memories
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "query": b.query, "memories": memories, "total": memories.len(), "method": recall.method,
    })))
}

/// Soft delete: the memory stays, inactive (no longer recalled or counted as active).
#[utoipa::path(
    delete,
    path = "/memories/agents/{agent_id}/memories/{memory_id}",
    params(("agent_id" = i64, Path, description = "Agent id"), ("memory_id" = i64, Path, description = "Memory id")),
    responses(
        (status = 200, description = "`{status:\"forgotten\", memory_id}` (soft delete)", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn forget(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, memory_id) = path.into_inner();
    let client = state.pool.get().await?;
    require(&client, id).await?;
    let forgotten = gathering_agents::memory::forget(&client, id, memory_id)
        .await
        .map_err(crate::routes::chat::agent_error)?;
    if !forgotten {
        return Err(ApiError::NotFound(format!("Memory {memory_id} not found")));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "forgotten", "memory_id": memory_id})))
}

const STATS_SQL: &str = "
SELECT EXISTS (SELECT 1 FROM agent.agents WHERE id = $1) AS agent,
       count(*) AS total,
       count(*) FILTER (WHERE is_active) AS active,
       count(*) FILTER (WHERE is_active AND embedding IS NOT NULL) AS embedded,
       avg(importance) FILTER (WHERE is_active) AS avg_importance
FROM memory.memories WHERE agent_id = $1";

#[utoipa::path(
    get,
    path = "/memories/agents/{agent_id}/stats",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{total_memories, active_memories, embedded_memories, avg_importance?}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn stats(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(STATS_SQL).await?;
    let row = client.query_one(&stmt, &[&id]).await?;
    if !row.try_get::<_, bool>("agent")? {
        return Err(not_found(id));
    }
    Ok(HttpResponse::Ok().json(json!({
        "total_memories": row.try_get::<_, i64>("total")?,
        "active_memories": row.try_get::<_, i64>("active")?,
        "embedded_memories": row.try_get::<_, i64>("embedded")?,
        "avg_importance": row.try_get::<_, Option<f64>>("avg_importance")?,
    })))
}
