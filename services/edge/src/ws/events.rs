//! `/ws`: the event stream.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use chrono::Utc;
use futures_util::StreamExt;
use gathering_events::{Cursor, Event, Filter, HubBatch, cursor_of, read_after};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::registry::Registration;
use crate::state::AppState;

const MAX_FRAME: usize = 64 * 1024;
const MAX_TOPICS: usize = 100;
const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
const HISTORY_BATCH: i64 = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    token: Option<String>,
    last_event_id: Option<i64>,
}

/// The event stream (contract §4.1): subscriptions by topic, resumption from `last_event_id`.
#[utoipa::path(get, path = "/ws", params(WsQuery), responses(
    (status = 101, description = "Switched to the WebSocket protocol (a refused token closes with 1008)"),
    (status = 400, description = "Not a WebSocket upgrade request"),
))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<WsQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = query.into_inner();
    // Verified before the upgrade: a refused client gets its 1008 close right after the
    // handshake and nothing else.
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
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    if !authorized {
        actix_web::rt::spawn(async move {
            let _ = session
                .close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("Invalid or missing token".into()),
                }))
                .await;
        });
        return Ok(response);
    }
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        if let Err(e) = run(state, session, stream, query.last_event_id).await {
            tracing::debug!(error = %e, "websocket ended");
        }
    });
    Ok(response)
}

fn envelope(kind: &str, data: Value) -> String {
    json!({ "type": kind, "data": data, "timestamp": Utc::now().to_rfc3339() }).to_string()
}

fn event_frame(e: &Event) -> String {
    json!({
        "type": e.kind,
        "data": e.payload,
        "timestamp": e.created_at.to_rfc3339(),
        "event_id": e.id,
        "topics": e.topics,
    })
    .to_string()
}

struct Conn {
    session: Session,
    reg: Registration,
    subscriptions: Vec<String>,
    /// Position of the last event sent (or skipped by the filter).
    cursor: Cursor,
}

impl Conn {
    async fn send(&mut self, text: String) -> Result<(), actix_ws::Closed> {
        self.session.text(text).await?;
        self.reg.sent(1);
        Ok(())
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), actix_ws::Closed> {
        for e in events {
            if e.cursor() <= self.cursor {
                continue; // already sent from history
            }
            self.cursor = e.cursor();
            if e.matches(&self.subscriptions) {
                self.send(event_frame(e)).await?;
            }
        }
        Ok(())
    }

    async fn handle(&mut self, text: &str) -> Result<(), actix_ws::Closed> {
        self.reg.received();
        let msg: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let action = msg.get("action").and_then(Value::as_str).unwrap_or("");
        let topics = || -> Vec<String> {
            msg.get("topics")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|t| !t.is_empty() && t.len() <= 200)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let reply = match action {
            "subscribe" => {
                let new = topics();
                for t in &new {
                    if !self.subscriptions.contains(t) && self.subscriptions.len() < MAX_TOPICS {
                        self.subscriptions.push(t.clone());
                    }
                }
                envelope("subscribed", json!({ "topics": new }))
            }
            "unsubscribe" => {
                let gone = topics();
                self.subscriptions.retain(|t| !gone.contains(t));
                envelope("unsubscribed", json!({ "topics": gone }))
            }
            "ping" => envelope("pong", json!({})),
            "info" => envelope(
                "info",
                json!({
                    "id": self.reg.stats.id,
                    "subscriptions": self.subscriptions,
                    "connected_at": self.reg.stats.connected_at.to_rfc3339(),
                    "last_event_id": self.cursor.id,
                }),
            ),
            other => {
                let shown: String = other.chars().take(100).collect();
                envelope(
                    "error",
                    json!({ "message": format!("Unknown action: {shown}") }),
                )
            }
        };
        self.send(reply).await
    }
}

async fn run(
    state: std::sync::Arc<AppState>,
    session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    last_event_id: Option<i64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut live = state.hub.subscribe();
    let reg = state.ws.register();
    let mut conn = Conn {
        session,
        reg,
        subscriptions: Vec::new(),
        cursor: state.hub.cursor(),
    };
    let id = conn.reg.stats.id.clone();
    conn.send(envelope(
        "connected",
        json!({ "connection_id": id, "message": "Connected to GatheRing event stream" }),
    ))
    .await?;

    if let Some(last) = last_event_id {
        // Resume: everything after the client's last event, then live (deduplicated by cursor).
        let client = state.pool.get().await?;
        let mut cursor = cursor_of(&client, last)
            .await?
            .unwrap_or(Cursor { xid: 0, id: last });
        conn.cursor = Cursor::START;
        loop {
            let batch = read_after(&client, cursor, &Filter::default(), HISTORY_BATCH).await?;
            let Some(end) = batch.last().map(Event::cursor) else {
                break;
            };
            conn.deliver(&batch).await?;
            cursor = end;
        }
        conn.cursor = conn.cursor.max(cursor);
    }

    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(actix_ws::AggregatedMessage::Text(text))) => { last_seen = Instant::now(); conn.handle(&text).await?; }
                Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => { last_seen = Instant::now(); conn.session.pong(&bytes).await?; }
                Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => last_seen = Instant::now(),
                Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                    conn.send(envelope("error", json!({"message": "binary frames are not supported"}))).await?;
                }
            },
            batch = live.recv() => match batch {
                Ok(batch) => { conn.reg.broadcast_received(); deliver_batch(&mut conn, &batch).await?; }
                Err(RecvError::Lagged(missed)) => {
                    // The client could not keep up: say so instead of buffering without bound.
                    let data = json!({ "missed_batches": missed, "last_event_id": conn.cursor.id });
                    conn.send(envelope("lagged", data)).await?;
                    conn.cursor = state.hub.cursor();
                }
                Err(RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_TIMEOUT { break; }
                conn.session.ping(b"").await?;
            }
            _ = state.shutdown.wait() => {
                let reason = CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) };
                let _ = conn.session.clone().close(Some(reason)).await;
                return Ok(());
            }
        }
    }
    let _ = conn.session.clone().close(None).await;
    Ok(())
}

async fn deliver_batch(conn: &mut Conn, batch: &HubBatch) -> Result<(), actix_ws::Closed> {
    conn.deliver(batch).await
}
