//! Tokens of a conversation turn, from the executor generating them to whichever edge holds a
//! `/ws/conversation/{id}` socket.
//!
//! Tokens are ephemeral and frequent, so they do not go through the event log (a durable row
//! each, delivered to every `/ws` client without subscriptions): the executor batches the
//! deltas of a turn (a flush every 40 ms or 512 bytes) and sends each batch with
//! `pg_notify('conversation_stream', …)`; every edge runs one `LISTEN` connection ([`Relay`])
//! and fans chunks out to its sockets. Delivery is best effort — a lost notification loses
//! some tokens on screen, never data: the turn's full text is stored with its message and
//! reaches the socket as `turn_end` through the durable `conversation.message` event. A turn
//! re-run after an executor died streams again from its start (a new `start` chunk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gathering_agents::ChatEvent;
use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_db::listen::ListenerEvent;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::CircleError;

pub const CHANNEL: &str = "conversation_stream";
const FLUSH_EVERY: Duration = Duration::from_millis(40);
const FLUSH_BYTES: usize = 512;
/// NOTIFY payloads must stay under 8000 bytes; content is cut well below.
const MAX_CONTENT_BYTES: usize = 6000;

/// One notification: a turn starts, or some of its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    #[serde(rename = "c")]
    pub conversation_id: i64,
    #[serde(rename = "t")]
    pub turn: i32,
    #[serde(rename = "a")]
    pub agent_id: i64,
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    pub agent_name: String,
    /// `start` or `token`.
    #[serde(rename = "k")]
    pub kind: String,
    #[serde(rename = "d", default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

async fn notify(pool: &Pool, chunk: &Chunk) -> Result<(), CircleError> {
    let payload = serde_json::to_string(chunk).unwrap_or_default();
    let client = pool.get().await?;
    client
        .execute("SELECT pg_notify('conversation_stream', $1)", &[&payload])
        .await?;
    Ok(())
}

/// Announces a turn.
pub async fn turn_start(
    pool: &Pool,
    conversation_id: i64,
    turn: i32,
    agent_id: i64,
    agent_name: &str,
) {
    let chunk = Chunk {
        conversation_id,
        turn,
        agent_id,
        agent_name: agent_name.to_owned(),
        kind: "start".into(),
        content: String::new(),
    };
    if let Err(e) = notify(pool, &chunk).await {
        tracing::debug!(error = %e, "turn start not streamed");
    }
}

/// Forwards a turn's token events until the channel closes, in batches.
pub async fn forward(
    pool: Pool,
    conversation_id: i64,
    turn: i32,
    agent_id: i64,
    mut events: mpsc::Receiver<ChatEvent>,
) {
    let mut buffer = String::new();
    let mut since: Option<Instant> = None;
    let flush = |text: String| {
        let pool = pool.clone();
        async move {
            for part in split(&text, MAX_CONTENT_BYTES) {
                let chunk = Chunk {
                    conversation_id,
                    turn,
                    agent_id,
                    agent_name: String::new(),
                    kind: "token".into(),
                    content: part.to_owned(),
                };
                if let Err(e) = notify(&pool, &chunk).await {
                    tracing::debug!(error = %e, "tokens not streamed");
                    return;
                }
            }
        }
    };
    loop {
        let wait = since.map_or(Duration::from_secs(3600), |s| {
            FLUSH_EVERY.saturating_sub(s.elapsed())
        });
        tokio::select! {
            event = events.recv() => match event {
                Some(ChatEvent::Token(t)) => {
                    buffer.push_str(&t);
                    since.get_or_insert_with(Instant::now);
                    if buffer.len() >= FLUSH_BYTES {
                        flush(std::mem::take(&mut buffer)).await;
                        since = None;
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep(wait), if since.is_some() => {
                flush(std::mem::take(&mut buffer)).await;
                since = None;
            }
        }
    }
    if !buffer.is_empty() {
        flush(buffer).await;
    }
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries.
pub fn split(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// An edge's side: one `LISTEN` connection, chunks fanned out to local subscribers.
#[derive(Clone)]
pub struct Relay {
    tx: broadcast::Sender<Arc<Chunk>>,
}

impl Relay {
    pub async fn start(database_url: &str, shutdown: Shutdown) -> Result<Relay, CircleError> {
        let mut listener =
            gathering_db::Listener::start(database_url, &[CHANNEL], shutdown.clone())
                .await
                .map_err(CircleError::Db)?;
        let (tx, _) = broadcast::channel(4096);
        let relay = Relay { tx: tx.clone() };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = listener.recv() => match event {
                        Some(ListenerEvent::Notification(n)) => {
                            if let Ok(chunk) = serde_json::from_str::<Chunk>(&n.payload) {
                                let _ = tx.send(Arc::new(chunk));
                            }
                        }
                        Some(ListenerEvent::Reconnected) => {}
                        None => return,
                    },
                    _ = shutdown.wait() => return,
                }
            }
        });
        Ok(relay)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Chunk>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_char_boundaries() {
        assert_eq!(split("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(split("ééé", 3), vec!["é", "é", "é"]);
        assert!(split("", 4).is_empty());
    }

    #[test]
    fn chunks_are_compact() {
        let c = Chunk {
            conversation_id: 3,
            turn: 2,
            agent_id: 7,
            agent_name: String::new(),
            kind: "token".into(),
            content: "hi".into(),
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(s, r#"{"c":3,"t":2,"a":7,"k":"token","d":"hi"}"#);
        assert_eq!(serde_json::from_str::<Chunk>(&s).unwrap(), c);
    }
}
