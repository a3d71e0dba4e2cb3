//! `/ws/conversation/{conv_id}` (contract §4.4): a conversation as it happens, whichever
//! executor runs it. Flat messages: `connected`; per turn `turn_start`, `token`s (20-character
//! pieces), `turn_end`; `conversation_complete` at the end of a run. `{action: "advance",
//! prompt?}` runs one more turn (starting a pending conversation turn by turn); `{action:
//! "ping"}` → `pong`.
//!
//! `turn_start` and tokens come from the executors through the `conversation_stream` relay
//! (best effort); `turn_end` and `conversation_complete` from the durable event log (the
//! stored message itself), so a socket always sees every turn's full text. Tokens of a turn
//! that arrive before the previous turn's end are held until it (the two paths race). Like
//! `/ws/chat`, the socket needs a token unless authentication is disabled in development.

use std::collections::VecDeque;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use chrono::Utc;
use futures_util::StreamExt;
use gathering_circles::conversations::stream::Chunk;
use gathering_circles::conversations::{self, view};
use gathering_events::Event;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

const MAX_FRAME: usize = 64 * 1024;
/// Chunks of later turns held while an earlier turn has not ended.
const MAX_HELD: usize = 2000;
const TOKEN_CHARS: usize = 20;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Query {
    token: Option<String>,
}

/// A conversation's turns as they happen (contract §4.4).
#[utoipa::path(get, path = "/ws/conversation/{conv_id}", params(("conv_id" = String, Path, description = "Conversation id"), Query), responses(
    (status = 101, description = "Switched to the WebSocket protocol (a refused token closes with 1008)"),
    (status = 400, description = "Not a WebSocket upgrade request"),
))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Query>,
) -> Result<HttpResponse, actix_web::Error> {
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
    let id = path.parse::<i64>().ok().filter(|i| *i > 0);
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        if !authorized {
            let reason = CloseReason {
                code: CloseCode::Policy,
                description: Some("Invalid or missing token".into()),
            };
            let _ = session.close(Some(reason)).await;
            return;
        }
        let conv = match id {
            Some(id) => match state.pool.get().await {
                Ok(c) => view::conv(&c, id).await.ok(),
                Err(_) => None,
            },
            None => None,
        };
        let (Some(id), Some(conv)) = (id, conv) else {
            let message = format!(
                "Conversation '{}' not found",
                path.chars().take(40).collect::<String>()
            );
            let _ = session
                .text(json!({"type": "error", "message": message}).to_string())
                .await;
            let _ = session.close(None).await;
            return;
        };
        let connected = json!({
            "type": "connected",
            "conv_id": id,
            "topic": conv["topic"],
            "circle_name": conv["circle_name"],
            "participants": conv["participant_names"],
            "turns_taken": conv["turns_taken"],
            "max_turns": conv["max_turns"],
        });
        if session.text(connected.to_string()).await.is_err() {
            return;
        }
        let seen = conv["turns_taken"].as_i64().unwrap_or(0) as i32;
        Conn {
            session,
            id,
            seen,
            held: VecDeque::new(),
        }
        .run(state, stream)
        .await;
    });
    Ok(response)
}

struct Conn {
    session: Session,
    id: i64,
    /// The last turn whose end was sent.
    seen: i32,
    held: VecDeque<Arc<Chunk>>,
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

impl Conn {
    async fn send(&mut self, frame: Value) -> Result<(), actix_ws::Closed> {
        self.session.text(frame.to_string()).await
    }

    async fn chunk(&mut self, c: &Chunk) -> Result<(), actix_ws::Closed> {
        if c.turn <= self.seen {
            return Ok(()); // a turn already ended (its text went out with turn_end)
        }
        match c.kind.as_str() {
            "start" => {
                self.send(json!({"type": "turn_start", "agent_id": c.agent_id,
                    "agent_name": c.agent_name, "turn": c.turn, "timestamp": now()}))
                    .await
            }
            _ => {
                let pieces: Vec<String> = split_chars(&c.content, TOKEN_CHARS);
                for p in pieces {
                    self.send(json!({"type": "token", "agent_id": c.agent_id, "content": p}))
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn relay(&mut self, c: Arc<Chunk>) -> Result<(), actix_ws::Closed> {
        if c.conversation_id != self.id {
            return Ok(());
        }
        if c.turn > self.seen + 1 {
            if self.held.len() < MAX_HELD {
                self.held.push_back(c);
            }
            return Ok(());
        }
        self.chunk(&c).await
    }

    async fn event(&mut self, e: &Event) -> Result<(), actix_ws::Closed> {
        if e.payload.get("conversation_id").and_then(Value::as_i64) != Some(self.id) {
            return Ok(());
        }
        let p = &e.payload;
        match e.kind.as_str() {
            "conversation.message" => {
                let Some(turn) = p.get("turn").and_then(Value::as_i64) else {
                    return Ok(()); // the user's message
                };
                let turn = turn as i32;
                self.send(json!({"type": "turn_end", "agent_id": p["agent_id"],
                    "agent_name": p["agent_name"], "content": p["content"], "turn": turn,
                    "timestamp": p["timestamp"]}))
                    .await?;
                self.seen = self.seen.max(turn);
                let held: Vec<Arc<Chunk>> = self.held.drain(..).collect();
                for c in held {
                    if c.turn > self.seen + 1 {
                        self.held.push_back(c);
                    } else {
                        self.chunk(&c).await?;
                    }
                }
                Ok(())
            }
            "conversation.completed" => {
                self.send(json!({"type": "conversation_complete",
                    "turns_taken": p["turns_taken"], "message_count": p["message_count"]}))
                    .await
            }
            "conversation.cancelled" | "conversation.deleted" => {
                self.send(json!({"type": "conversation_cancelled", "conv_id": self.id}))
                    .await
            }
            "conversation.failed" => {
                self.send(json!({"type": "error", "message": "The conversation failed"}))
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn action(&mut self, state: &AppState, text: &str) -> Result<(), actix_ws::Closed> {
        let msg: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match msg.get("action").and_then(Value::as_str).unwrap_or("") {
            "ping" => self.send(json!({"type": "pong", "timestamp": now()})).await,
            "advance" => {
                let prompt = msg.get("prompt").and_then(Value::as_str);
                match conversations::advance(&state.circles, self.id, prompt, 1, true).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let message = match e {
                            gathering_circles::CircleError::Db(_)
                            | gathering_circles::CircleError::Queue(_)
                            | gathering_circles::CircleError::Events(_) => {
                                tracing::error!(error = %e, "advancing a conversation failed");
                                "Internal server error".to_owned()
                            }
                            other => other.to_string(),
                        };
                        self.send(json!({"type": "error", "message": message}))
                            .await
                    }
                }
            }
            other => {
                let shown: String = other.chars().take(100).collect();
                self.send(json!({"type": "error", "message": format!("Unknown action: {shown}")}))
                    .await
            }
        }
    }

    async fn run(mut self, state: Arc<AppState>, mut stream: actix_ws::AggregatedMessageStream) {
        let mut chunks = state.conversation_stream.subscribe();
        let mut events = state.hub.subscribe();
        loop {
            // Biased: the relay's tokens of a turn drain before the event that ends it (they
            // are sent before the message is stored, and the relay is the faster path).
            let step = tokio::select! {
                biased;
                chunk = chunks.recv() => match chunk {
                    Ok(c) => self.relay(c).await,
                    Err(RecvError::Lagged(_)) => Ok(()), // some tokens lost on screen only
                    Err(RecvError::Closed) => break,
                },
                msg = stream.next() => match msg {
                    Some(Ok(actix_ws::AggregatedMessage::Text(t))) => self.action(&state, &t).await,
                    Some(Ok(actix_ws::AggregatedMessage::Ping(b))) => self.session.pong(&b).await,
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => Ok(()),
                },
                batch = events.recv() => match batch {
                    Ok(batch) => {
                        let mut r = Ok(());
                        for e in batch.iter() {
                            r = self.event(e).await;
                            if r.is_err() { break; }
                        }
                        r
                    }
                    Err(RecvError::Lagged(_)) => Ok(()),
                    Err(RecvError::Closed) => break,
                },
                _ = state.shutdown.wait() => {
                    let reason = CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) };
                    let _ = self.session.close(Some(reason)).await;
                    return;
                }
            };
            if step.is_err() {
                return;
            }
        }
        let _ = self.session.close(None).await;
    }
}

/// `text` in pieces of at most `n` characters.
fn split_chars(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}
