//! `/ws/dashboard?client_id=` (contract §4.5): every domain event of the event log, broadcast
//! to every client as `{type, data, source_agent_id, circle_id, project_id, event_id,
//! timestamp}`, with `connection.established` on accept and `ping` → `pong` (the client's
//! timestamp echoed). Upstream left it unauthenticated; here it takes `?token=` like `/ws`
//! (close 1008 without a valid one; dev no-auth mode skips it), since the events describe
//! every user's work. Clients count in `/ws/stats` under their `client_id`. A client that falls
//! behind gets a `lagged` notice instead of unbounded buffering, as on `/ws`.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use chrono::Utc;
use futures_util::StreamExt;
use gathering_events::Event;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::registry::Registration;
use crate::state::AppState;

const MAX_FRAME: usize = 16 * 1024;
const MAX_CLIENT_ID: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Query {
    client_id: Option<String>,
    token: Option<String>,
}

fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Every event, broadcast to dashboards (contract §4.5).
#[utoipa::path(get, path = "/ws/dashboard", params(Query), responses(
    (status = 101, description = "Switched to the WebSocket protocol (a refused token closes with 1008)"),
    (status = 400, description = "Not a WebSocket upgrade request"),
))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = query.into_inner();
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
    let refusal = if !authorized {
        Some("Invalid or missing token")
    } else if query
        .client_id
        .as_deref()
        .is_some_and(|c| !valid_client_id(c))
    {
        Some("client_id must be 1 to 64 letters, digits, '-', '_', '.' or ':'")
    } else {
        None
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    if let Some(reason) = refusal {
        actix_web::rt::spawn(async move {
            let _ = session
                .close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some(reason.into()),
                }))
                .await;
        });
        return Ok(response);
    }
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        if let Err(e) = run(state, session, stream, query.client_id).await {
            tracing::debug!(error = %e, "dashboard websocket ended");
        }
    });
    Ok(response)
}

/// An event as `/ws/dashboard` frames it.
fn frame(e: &Event) -> String {
    let field = |name: &str| e.payload.get(name).cloned().unwrap_or(Value::Null);
    let source = match field("source_agent_id") {
        Value::Null => field("agent_id"),
        v => v,
    };
    json!({
        "type": e.kind,
        "data": e.payload,
        "source_agent_id": source,
        "circle_id": field("circle_id"),
        "project_id": field("project_id"),
        "event_id": e.id,
        "timestamp": e.created_at.to_rfc3339(),
    })
    .to_string()
}

async fn send(
    session: &mut Session,
    reg: &Registration,
    text: String,
) -> Result<(), actix_ws::Closed> {
    session.text(text).await?;
    reg.sent(1);
    Ok(())
}

/// The answer to a client message.
fn reply(text: &str) -> String {
    let msg: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match msg.get("type").and_then(Value::as_str) {
        Some("ping") => json!({
            "type": "pong",
            "timestamp": msg.get("timestamp").cloned().unwrap_or_else(|| json!(Utc::now().to_rfc3339())),
        })
        .to_string(),
        other => {
            let shown: String = other.unwrap_or("").chars().take(100).collect();
            json!({"type": "error", "message": format!("Unknown message type: {shown}")}).to_string()
        }
    }
}

async fn run(
    state: std::sync::Arc<AppState>,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    client_id: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut live = state.hub.subscribe();
    let reg = state.ws.register_as(client_id);
    let mut cursor = state.hub.cursor();
    let hello = json!({
        "type": "connection.established",
        "data": {"client_id": reg.stats.id, "message": "Connected to GatheRing dashboard"},
    });
    send(&mut session, &reg, hello.to_string()).await?;
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                    last_seen = Instant::now();
                    reg.received();
                    send(&mut session, &reg, reply(&text)).await?;
                }
                Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => { last_seen = Instant::now(); session.pong(&bytes).await?; }
                Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => last_seen = Instant::now(),
                Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                    send(&mut session, &reg, json!({"type": "error", "message": "binary frames are not supported"}).to_string()).await?;
                }
                Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => break,
            },
            batch = live.recv() => match batch {
                Ok(batch) => {
                    reg.broadcast_received();
                    for e in batch.iter() {
                        if e.cursor() <= cursor {
                            continue;
                        }
                        cursor = e.cursor();
                        send(&mut session, &reg, frame(e)).await?;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let data = json!({"missed_batches": missed, "last_event_id": cursor.id});
                    send(&mut session, &reg, json!({"type": "lagged", "data": data}).to_string()).await?;
                    cursor = state.hub.cursor();
                }
                Err(RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_TIMEOUT { break; }
                session.ping(b"").await?;
            }
            _ = state.shutdown.wait() => {
                let reason = CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) };
                let _ = session.close(Some(reason)).await;
                return Ok(());
            }
        }
    }
    let _ = session.close(None).await;
    Ok(())
}
