//! How conversations read (contract §2.6): `Conv` in lists, `ConvDetail` with the messages,
//! the transcript, the summary and the duration. Messages of the user carry `agent_id` 0.

use gathering_db::GenericClient;
use serde_json::Value;

use crate::error::CircleError;

macro_rules! conv_json {
    () => {
        "SELECT jsonb_build_object(
            'id', cv.id::text, 'conversation_id', cv.id, 'topic', cv.topic, 'status', cv.status::text,
            'participant_names', cv.participant_names, 'participant_ids', cv.participant_agent_ids,
            'turns_taken', cv.turns_taken, 'max_turns', cv.max_turns, 'turn_strategy', cv.turn_strategy,
            'circle_name', c.name, 'initial_prompt', cv.initial_prompt, 'created_at', cv.created_at,
            'started_at', cv.started_at, 'completed_at', cv.completed_at, 'summary', cv.summary,
            'error', cv.error,
            'duration_seconds', CASE WHEN cv.started_at IS NULL THEN 0
                ELSE extract(epoch FROM COALESCE(cv.completed_at, now()) - cv.started_at)::float8 END) AS conv
         FROM communication.conversations cv
         LEFT JOIN circle.circles c ON c.id = cv.circle_id "
    };
}

const ONE_SQL: &str = concat!(conv_json!(), "WHERE cv.id = $1 AND cv.is_active");
const LIST_SQL: &str = concat!(
    conv_json!(),
    "WHERE cv.is_active ORDER BY cv.created_at DESC, cv.id DESC LIMIT $1"
);

const MESSAGES_SQL: &str = "
SELECT jsonb_build_object(
    'agent_id', COALESCE(agent_id, 0), 'agent_name', COALESCE(agent_name, 'User'),
    'content', content, 'mentions', mentions, 'timestamp', created_at, 'turn', turn) AS message
FROM communication.messages WHERE conversation_id = $1
ORDER BY created_at, id
LIMIT 5000";

fn values(
    rows: &[gathering_db::tokio_postgres::Row],
    col: &str,
) -> Result<Vec<Value>, CircleError> {
    rows.iter()
        .map(|r| r.try_get::<_, Value>(col).map_err(CircleError::decode))
        .collect()
}

/// `Conv`, or 404.
pub async fn conv<C: GenericClient>(c: &C, id: i64) -> Result<Value, CircleError> {
    let row = c
        .query_opt(ONE_SQL, &[&id])
        .await?
        .ok_or(CircleError::ConversationNotFound(id))?;
    Ok(row.try_get("conv")?)
}

pub async fn list<C: GenericClient>(c: &C, limit: i64) -> Result<Vec<Value>, CircleError> {
    let rows = c.query(LIST_SQL, &[&limit]).await?;
    values(&rows, "conv")
}

pub async fn messages<C: GenericClient>(c: &C, id: i64) -> Result<Vec<Value>, CircleError> {
    let rows = c.query(MESSAGES_SQL, &[&id]).await?;
    values(&rows, "message")
}

/// "Name: text" paragraphs.
pub fn transcript(messages: &[Value]) -> String {
    messages
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["agent_name"].as_str().unwrap_or("User"),
                m["content"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `ConvDetail`, or 404.
pub async fn detail<C: GenericClient>(c: &C, id: i64) -> Result<Value, CircleError> {
    let mut out = conv(c, id).await?;
    let messages = messages(c, id).await?;
    out["transcript"] = Value::String(transcript(&messages));
    out["messages"] = Value::from(messages);
    Ok(out)
}
