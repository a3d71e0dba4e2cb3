//! An agent's chat history and working session (`agent.sessions`, one open per agent): the
//! files it works on and its current task, through `gathering_agents::session`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gathering_agents::session;
use serde::Deserialize;
use serde_json::json;

use super::{not_found, require};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::routes::catalogue::input::{line_ok, text_ok};
use crate::routes::catalogue::rows::iso;
use crate::state::AppState;

fn default_limit() -> i64 {
    50
}

/// Most messages one history request returns.
const MAX_HISTORY: i64 = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

/// The agent's last `limit` user and assistant messages, oldest first; one query, which also
/// tells a missing agent (no row) from an empty history (one row of NULLs).
const HISTORY_SQL: &str = "
SELECT a.name, h.id, h.role, h.content, h.created_at
FROM agent.agents a
LEFT JOIN LATERAL (
    SELECT id, role::text AS role, content, created_at
    FROM communication.chat_history
    WHERE agent_id = a.id AND role IN ('user', 'assistant')
    ORDER BY created_at DESC, id DESC
    LIMIT $2
) h ON true
WHERE a.id = $1
ORDER BY h.created_at, h.id";

#[utoipa::path(
    get,
    path = "/agents/{agent_id}/history",
    params(("agent_id" = i64, Path, description = "Agent id"), HistoryQuery),
    responses(
        (status = 200, description = "`{messages[{id, role: user|assistant, content, timestamp, agent_name?}]}`, oldest first (`chat_history`)", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn history(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if !(1..=MAX_HISTORY).contains(&q.limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "limit must be 1 to 1000",
        )]));
    }
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(HISTORY_SQL).await?;
    let rows = client.query(&stmt, &[&id, &q.limit]).await?;
    if rows.is_empty() {
        return Err(not_found(id));
    }
    // The agent's row comes back without a message when it has none: skipped.
    let mut messages = Vec::with_capacity(rows.len());
    for r in &rows {
        let msg_id: Option<i64> = r.try_get("id")?;
        let role: Option<String> = r.try_get("role")?;
        let at: Option<DateTime<Utc>> = r.try_get("created_at")?;
        let (Some(role), Some(at)) = (role, at) else {
            continue;
        };
        let name: String = r.try_get("name")?;
        let Some(msg_id) = msg_id else {
            continue;
        };
        messages.push(json!({
            "id": msg_id,
            "agent_name": (role == "assistant").then_some(name),
            "role": role,
            "content": r.try_get::<_, Option<String>>("content")?,
            "timestamp": iso(at),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "messages": messages })))
}

fn session_error(e: gathering_agents::AgentError) -> ApiError {
    ApiError::Internal(e.to_string())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    file_path: Option<String>,
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/session/track-file",
    params(("agent_id" = i64, Path, description = "Agent id"), TrackQuery),
    responses(
        (status = 200, description = "`{status:\"ok\", file}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn track_file(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<TrackQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let Some(file) = q.into_inner().file_path else {
        return Err(ApiError::Validation(vec![FieldError {
            kind: "missing".into(),
            ..FieldError::query("file_path", "Field required")
        }]));
    };
    if !line_ok(&file, 1, 4096) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "file_path",
            "file_path must be 1 to 4096 characters",
        )]));
    }
    let client = state.pool.get().await?;
    require(&client, id).await?;
    session::track_file(&client, id, &file)
        .await
        .map_err(session_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "file": file})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    task_id: Option<String>,
    title: Option<String>,
    #[serde(default)]
    progress: String,
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/session/set-task",
    params(("agent_id" = i64, Path, description = "Agent id"), TaskQuery),
    responses(
        (status = 200, description = "`{status:\"ok\", task_id, title}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn set_task(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<TaskQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let q = q.into_inner();
    let mut v = Violations::new();
    // The contract's task id is an integer.
    let task_id = match q.task_id.as_deref().map(str::parse::<i64>) {
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            v.push(FieldError {
                kind: "int_parsing".into(),
                ..FieldError::query("task_id", "Input should be a valid integer")
            });
            None
        }
        None => {
            v.push(FieldError {
                kind: "missing".into(),
                ..FieldError::query("task_id", "Field required")
            });
            None
        }
    };
    match &q.title {
        None => {
            v.push(FieldError {
                kind: "missing".into(),
                ..FieldError::query("title", "Field required")
            });
        }
        Some(t) if !line_ok(t, 1, 500) => {
            v.push(FieldError::query(
                "title",
                "title must be 1 to 500 characters",
            ));
        }
        Some(_) => {}
    }
    if !text_ok(&q.progress, 2000) {
        v.push(FieldError::query("progress", "progress is too long"));
    }
    v.finish()?;
    let (Some(task_id), Some(title)) = (task_id, q.title) else {
        return Err(ApiError::internal("validated task fields missing"));
    };
    let client = state.pool.get().await?;
    require(&client, id).await?;
    session::set_task(
        &client,
        id,
        Some(&task_id.to_string()),
        Some(&title),
        Some(&q.progress),
    )
    .await
    .map_err(session_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "task_id": task_id, "title": title})))
}

#[utoipa::path(
    delete,
    path = "/agents/{agent_id}/session/task",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{status:\"ok\"}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn clear_task(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    require(&client, id).await?;
    session::set_task(&client, id, None, None, None)
        .await
        .map_err(session_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}
