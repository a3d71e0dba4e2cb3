//! `/ws/chat/{agent_id}` (contract §4.3): a chat whose answer streams as it is generated.
//! Flat messages: `connected`, then per message `start`, `token`s, `done` (or `error`).

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use chrono::Utc;
use futures_util::StreamExt;
use gathering_agents::{ChatEvent, ChatOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::state::AppState;

const MAX_FRAME: usize = 256 * 1024;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Query {
    token: Option<String>,
}

/// Streams an agent's chat answer (contract §4.3).
#[utoipa::path(get, path = "/ws/chat/{agent_id}", params(("agent_id" = i64, Path, description = "Agent id"), Query), responses(
    (status = 101, description = "Switched to the WebSocket protocol (a refused token closes with 1008)"),
    (status = 400, description = "Not a WebSocket upgrade request"),
))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<Query>,
) -> Result<HttpResponse, actix_web::Error> {
    let agent_id = path.into_inner();
    let authorized = if state.config.disable_auth && state.config.env.is_development() {
        true
    } else {
        match crate::auth::session_cookie::ws_token(
            req.headers(),
            &state.config,
            query.token.as_deref(),
        ) {
            Some(t) => state.verifier.verify(t).await.is_ok(),
            None => false,
        }
    };
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        if !authorized {
            let _ = session
                .close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("Invalid or missing token".into()),
                }))
                .await;
            return;
        }
        let name = match state.pool.get().await {
            Ok(c) => c
                .query_opt("SELECT name FROM agent.agents WHERE id = $1", &[&agent_id])
                .await
                .ok()
                .flatten()
                .and_then(|r| {
                    r.try_get::<_, String>(0)
                        .inspect_err(
                            |e| tracing::error!(error = %e, agent_id, "agent row unreadable"),
                        )
                        .ok()
                }),
            Err(_) => None,
        };
        let Some(name) = name else {
            let _ = session
                .text(
                    json!({"type": "error", "message": format!("Agent {agent_id} not found")})
                        .to_string(),
                )
                .await;
            let _ = session.close(None).await;
            return;
        };
        if session
            .text(
                json!({"type": "connected", "agent_id": agent_id, "agent_name": name}).to_string(),
            )
            .await
            .is_err()
        {
            return;
        }
        run(state, session, stream, agent_id).await;
    });
    Ok(response)
}

async fn run(
    state: std::sync::Arc<AppState>,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    agent_id: i64,
) {
    loop {
        let next = tokio::select! {
            m = stream.next() => m,
            _ = state.shutdown.wait() => {
                let reason = CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) };
                let _ = session.close(Some(reason)).await;
                return;
            }
        };
        let Some(Ok(msg)) = next else { break };
        let text = match msg {
            actix_ws::AggregatedMessage::Text(t) => t,
            actix_ws::AggregatedMessage::Ping(b) => {
                let _ = session.pong(&b).await;
                continue;
            }
            actix_ws::AggregatedMessage::Close(_) => break,
            _ => continue,
        };
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or("").to_owned();
        if message.trim().is_empty() {
            if session
                .text(json!({"type": "error", "message": "No message provided"}).to_string())
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        let options = ChatOptions {
            include_memories: body["include_memories"].as_bool().unwrap_or(true),
            allow_tools: body["allow_tools"].as_bool().unwrap_or(true),
            request_id: format!("ws-chat-{agent_id}-{}", Utc::now().timestamp_millis()),
        };
        let (tx, mut rx) = mpsc::channel(256);
        let runtime = state.agents.clone();
        let chat =
            tokio::spawn(async move { runtime.chat(agent_id, &message, &options, Some(tx)).await });
        // Forward events as they come; the channel closes when the chat ends.
        while let Some(event) = rx.recv().await {
            let frame = match event {
                ChatEvent::Start { agent_name } => {
                    json!({"type": "start", "agent_name": agent_name, "timestamp": Utc::now().to_rfc3339()})
                }
                ChatEvent::Token(content) => json!({"type": "token", "content": content}),
                ChatEvent::ToolCall(t) => {
                    json!({"type": "tool_call", "name": t.name, "arguments": t.arguments, "success": t.success})
                }
            };
            if session.text(frame.to_string()).await.is_err() {
                chat.abort();
                return;
            }
        }
        let frame = match chat.await {
            Ok(Ok(out)) => json!({
                "type": "done",
                "content": out.content,
                "agent_name": out.agent_name,
                "tokens_used": out.tokens_used,
                "tool_calls": out.tool_calls,
                "tool_results": out.tool_results,
                "timestamp": Utc::now().to_rfc3339(),
            }),
            Ok(Err(e)) => json!({"type": "error", "message": e.to_string()}),
            Err(_) => json!({"type": "error", "message": "chat failed"}),
        };
        if session.text(frame.to_string()).await.is_err() {
            return;
        }
    }
    let _ = session.close(None).await;
}
