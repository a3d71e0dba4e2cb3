//! `POST /agents/{agent_id}/chat` (contract §2.3): one message to an agent, answered after its
//! tool loop. One message at a time per agent across every edge: a second concurrent message
//! gets 409 "already processing".

use actix_web::{HttpResponse, web};
use gathering_agents::{AgentError, ChatOptions};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(chat,))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/agents/{agent_id}/chat", web::post().to(chat));
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChatBody {
    pub message: String,
    #[serde(default = "default_true")]
    pub include_memories: bool,
    #[serde(default = "default_true")]
    pub allow_tools: bool,
}

/// Agent runtime errors as API errors.
pub fn agent_error(e: AgentError) -> ApiError {
    match e {
        AgentError::NotFound(id) => ApiError::NotFound(format!("Agent {id} not found")),
        AgentError::AlreadyProcessing => {
            ApiError::Conflict("Agent is already processing a message".into())
        }
        AgentError::Invalid(m) => ApiError::BadRequest(m),
        AgentError::Llm(m) => ApiError::BadGateway(format!("The language model failed: {m}")),
        AgentError::Cancelled => ApiError::Unavailable("Cancelled".into()),
        other => ApiError::internal(other),
    }
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/chat",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = ChatBody,
    responses(
        (status = 200, description = "`{content, agent_id, agent_name, model, duration_ms, tool_calls[], tool_results[], tokens_used}`. Writes 2 chat_history rows", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn chat(
    state: web::Data<AppState>,
    _user: AuthUser,
    meta: ClientMeta,
    path: web::Path<i64>,
    body: web::Json<ChatBody>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = path.into_inner();
    let body = body.into_inner();
    Violations::new()
        .check(
            !body.message.trim().is_empty(),
            "message",
            "No message provided",
        )
        .check(
            body.message.len() <= 100_000,
            "message",
            "String should have at most 100000 characters",
        )
        .finish()?;
    let options = ChatOptions {
        include_memories: body.include_memories,
        allow_tools: body.allow_tools,
        request_id: meta.request_id.unwrap_or_default(),
    };
    let outcome = state
        .agents
        .chat(agent_id, &body.message, &options, None)
        .await
        .map_err(agent_error)?;
    Ok(HttpResponse::Ok().json(outcome))
}
