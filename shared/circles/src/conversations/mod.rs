//! Agent conversations (A3, contract §2.6 and §4.4): members of a running circle talk about a
//! topic, turn by turn, each turn an agent-runtime call that sees the transcript so far.
//!
//! A conversation runs as a `conversation.run` job on an executor (`run`), stored message by
//! message: cancel from any edge takes effect within a second (the queue cancels the job and
//! the runner checks between and during turns); an executor killed mid-run loses at most the
//! turn in flight, and the job, taken over by another executor, resumes after the last stored
//! message. `start` and `advance` set how many turns the run goes to (`turn_limit`): while a run
//! is active, `advance` only raises it (and adds the user's message, which the next turn sees);
//! after it completed, `advance` starts a new run (`run_seq` + 1, a job of its own). Waiting
//! for the end (`POST …/start` answers the completed conversation) is [`wait_settled`], bounded.

pub mod run;
pub mod stream;
pub mod turns;
pub mod view;

use std::time::Duration;

use gathering_db::GenericClient;
use gathering_events::{Hub, publish_in};
use gathering_queue::{NewJob, enqueue_in};
use serde_json::{Value, json};

use crate::error::{CircleError, Violation, Violations};
use crate::input::{self, MAX_PARTICIPANTS, MAX_PROMPT, MAX_TOPIC, MAX_TOTAL_TURNS, MAX_TURNS};
use crate::{Circles, QUEUE, circles, events};

pub use turns::Strategy;

pub const RUN_KIND: &str = "conversation.run";

pub fn run_job(conversation_id: i64, seq: i32) -> NewJob {
    NewJob::new(
        RUN_KIND,
        json!({"conversation_id": conversation_id, "seq": seq}),
    )
    .queue(QUEUE)
    .unique_key(format!("conversation:{conversation_id}:{seq}"))
    .max_attempts(10)
}

/// A conversation to create (the contract's `ConvCreate`).
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub topic: String,
    pub agent_ids: Vec<i64>,
    pub max_turns: i32,
    pub initial_prompt: String,
    pub strategy: String,
    pub created_by: Option<String>,
}

impl NewConversation {
    pub fn validate(&self) -> Result<Strategy, CircleError> {
        let mut v = Vec::new();
        input::text("topic", &self.topic, true, MAX_TOPIC, &mut v);
        input::text(
            "initial_prompt",
            &self.initial_prompt,
            false,
            MAX_PROMPT,
            &mut v,
        );
        let mut violations = Violations::new();
        for x in v {
            violations.push(x);
        }
        let mut distinct = self.agent_ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        violations
            .check(!self.agent_ids.is_empty(), || {
                Violation::body("agent_ids", "List should have at least 1 item")
            })
            .check(self.agent_ids.len() <= MAX_PARTICIPANTS, || {
                Violation::body(
                    "agent_ids",
                    format!("List should have at most {MAX_PARTICIPANTS} items"),
                )
            })
            .check(distinct.len() == self.agent_ids.len(), || {
                Violation::body("agent_ids", "Agents must be distinct")
            })
            .check((1..=MAX_TURNS).contains(&self.max_turns), || {
                Violation::body(
                    "max_turns",
                    format!("Input should be between 1 and {MAX_TURNS}"),
                )
            });
        let strategy = Strategy::parse(&self.strategy);
        violations.check(strategy.is_some(), || {
            Violation::body(
                "turn_strategy",
                "Input should be 'round_robin', 'mention_based' or 'free_form'",
            )
        });
        violations.finish()?;
        strategy.ok_or_else(|| CircleError::invalid("turn_strategy", "unknown strategy"))
    }
}

const MEMBERS_SQL: &str = "
SELECT m.agent_id, a.name FROM circle.members m JOIN agent.agents a ON a.id = m.agent_id
WHERE m.circle_id = $1 AND m.is_active AND m.agent_id = ANY($2)";

const INSERT_SQL: &str = "
INSERT INTO communication.conversations (circle_id, project_id, topic, conversation_type,
    participant_agent_ids, participant_names, max_turns, turn_strategy, initial_prompt, status,
    created_by)
VALUES ($1, $2, $3, 'circle', $4, $5, $6, $7, $8, 'pending', $9)
RETURNING id";

/// Creates a pending conversation among members of the running circle `circle_name`.
pub async fn create(
    circles: &Circles,
    circle_name: &str,
    new: &NewConversation,
) -> Result<Value, CircleError> {
    let strategy = new.validate()?;
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = circles::find(&tx, circle_name).await?;
    if !circle.is_running() {
        return Err(CircleError::BadRequest(format!(
            "Circle '{}' is not running",
            circle.name
        )));
    }
    let rows = tx.query(MEMBERS_SQL, &[&circle.id, &new.agent_ids]).await?;
    let mut names = Vec::with_capacity(new.agent_ids.len());
    for id in &new.agent_ids {
        let mut found = None;
        for r in &rows {
            if r.try_get::<_, i64>("agent_id")? == *id {
                found = Some(r.try_get::<_, String>("name")?);
            }
        }
        match found {
            Some(n) => names.push(n),
            None => {
                return Err(CircleError::BadRequest(format!(
                    "Agent {id} is not in circle '{}'",
                    circle.name
                )));
            }
        }
    }
    let id: i64 = tx
        .query_one(
            INSERT_SQL,
            &[
                &circle.id,
                &circle.project_id,
                &new.topic.trim(),
                &new.agent_ids,
                &names,
                &new.max_turns,
                &strategy.as_str(),
                &new.initial_prompt,
                &new.created_by,
            ],
        )
        .await?
        .try_get("id")?;
    publish_in(
        &tx,
        &[events::conversation(
            "conversation.created",
            id,
            json!({"topic": new.topic.trim(), "circle": circle.name, "participants": names}),
        )],
    )
    .await?;
    let out = view::detail(&tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Starts a pending conversation: a run to `max_turns`, as a job.
pub async fn start(circles: &Circles, id: i64) -> Result<(), CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (status, _, _) = lock(&tx, id).await?;
    if status != "pending" {
        return Err(CircleError::BadRequest(format!(
            "Conversation is {status}: only a pending conversation can be started"
        )));
    }
    let seq: i32 = tx
        .query_one(
            "UPDATE communication.conversations SET status = 'active', started_at = now(), \
                 turn_limit = max_turns, run_seq = run_seq + 1, error = NULL \
             WHERE id = $1 RETURNING run_seq",
            &[&id],
        )
        .await?
        .try_get("run_seq")?;
    new_run(&tx, id, seq, "conversation.started").await?;
    tx.commit().await?;
    Ok(())
}

/// `(status, turns_taken, max_turns)` of a live conversation, locked.
async fn lock<C: GenericClient>(c: &C, id: i64) -> Result<(String, i32, i32), CircleError> {
    let row = c
        .query_opt(
            "SELECT status::text AS status, turns_taken, max_turns FROM communication.conversations \
             WHERE id = $1 AND is_active FOR NO KEY UPDATE",
            &[&id],
        )
        .await?
        .ok_or(CircleError::ConversationNotFound(id))?;
    Ok((
        row.try_get("status")?,
        row.try_get("turns_taken")?,
        row.try_get("max_turns")?,
    ))
}

async fn new_run<C: GenericClient>(
    c: &C,
    id: i64,
    seq: i32,
    event: &str,
) -> Result<(), CircleError> {
    let job = enqueue_in(c, &run_job(id, seq)).await?;
    c.execute(
        "UPDATE communication.conversations SET job_id = $2 WHERE id = $1",
        &[&id, &job.id],
    )
    .await?;
    publish_in(c, &[events::conversation(event, id, json!({"run": seq}))]).await?;
    Ok(())
}

/// Adds `prompt` as the user's message (when given) and runs up to `min(turns, max_turns)`
/// more turns. `allow_pending` lets the WebSocket start a pending conversation turn by turn.
pub async fn advance(
    circles: &Circles,
    id: i64,
    prompt: Option<&str>,
    turns: i32,
    allow_pending: bool,
) -> Result<(), CircleError> {
    if let Some(p) = prompt
        && p.chars().count() > MAX_PROMPT
    {
        return Err(CircleError::invalid(
            "prompt",
            format!("String should have at most {MAX_PROMPT} characters"),
        ));
    }
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (status, taken, max_turns) = lock(&tx, id).await?;
    let ok =
        matches!(status.as_str(), "active" | "completed") || (allow_pending && status == "pending");
    if !ok {
        return Err(CircleError::BadRequest(format!(
            "Conversation is {status}: only an active or completed conversation can be advanced"
        )));
    }
    let n = turns.clamp(1, max_turns.max(1));
    if taken + n > MAX_TOTAL_TURNS {
        return Err(CircleError::BadRequest(format!(
            "A conversation has at most {MAX_TOTAL_TURNS} turns"
        )));
    }
    if let Some(p) = prompt.map(str::trim).filter(|p| !p.is_empty()) {
        user_message(&tx, id, p).await?;
    }
    if status == "active" {
        tx.execute(
            "UPDATE communication.conversations SET turn_limit = GREATEST(turn_limit, turns_taken + $2) \
             WHERE id = $1",
            &[&id, &n],
        )
        .await?;
    } else {
        let seq: i32 = tx
            .query_one(
                "UPDATE communication.conversations SET status = 'active', \
                     started_at = COALESCE(started_at, now()), completed_at = NULL, \
                     turn_limit = turns_taken + $2, run_seq = run_seq + 1, error = NULL \
                 WHERE id = $1 RETURNING run_seq",
                &[&id, &n],
            )
            .await?
            .try_get("run_seq")?;
        new_run(&tx, id, seq, "conversation.started").await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn user_message<C: GenericClient>(c: &C, id: i64, text: &str) -> Result<(), CircleError> {
    let row = c
        .query_one(
            "INSERT INTO communication.messages (conversation_id, role, agent_id, agent_name, content) \
             VALUES ($1, 'user', NULL, 'User', $2) RETURNING created_at",
            &[&id, &text],
        )
        .await?;
    let at: chrono::DateTime<chrono::Utc> = row.try_get("created_at")?;
    publish_in(
        c,
        &[events::conversation(
            "conversation.message",
            id,
            json!({"agent_id": 0, "agent_name": "User", "content": text, "timestamp": at.to_rfc3339()}),
        )],
    )
    .await?;
    Ok(())
}

/// Cancels a pending or active conversation → `cancelled`, else `already_finished`.
pub async fn cancel(circles: &Circles, id: i64) -> Result<&'static str, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (status, _, _) = lock(&tx, id).await?;
    if !matches!(status.as_str(), "pending" | "active") {
        return Ok("already_finished");
    }
    let job: Option<i64> = tx
        .query_one(
            "UPDATE communication.conversations SET status = 'cancelled', completed_at = now(), \
                 runner = NULL WHERE id = $1 RETURNING job_id",
            &[&id],
        )
        .await?
        .try_get("job_id")?;
    publish_in(
        &tx,
        &[events::conversation(
            "conversation.cancelled",
            id,
            json!({"previous": status}),
        )],
    )
    .await?;
    tx.commit().await?;
    if let Some(job) = job {
        crate::tasks::cancel_job(circles, job).await;
    }
    Ok("cancelled")
}

/// Deletes a conversation (kept as inactive; a run in flight is cancelled).
pub async fn delete(circles: &Circles, id: i64) -> Result<(), CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (status, _, _) = lock(&tx, id).await?;
    let job: Option<i64> = tx
        .query_one(
            "UPDATE communication.conversations SET is_active = false, runner = NULL, \
                 status = CASE WHEN status IN ('pending', 'active') THEN 'cancelled'::conversation_status ELSE status END, \
                 completed_at = COALESCE(completed_at, now()) \
             WHERE id = $1 RETURNING job_id",
            &[&id],
        )
        .await?
        .try_get("job_id")?;
    publish_in(
        &tx,
        &[events::conversation(
            "conversation.deleted",
            id,
            json!({"previous": status}),
        )],
    )
    .await?;
    tx.commit().await?;
    if let (Some(job), true) = (job, matches!(status.as_str(), "pending" | "active")) {
        crate::tasks::cancel_job(circles, job).await;
    }
    Ok(())
}

/// Kinds that end a run.
const SETTLED: [&str; 4] = [
    "conversation.completed",
    "conversation.cancelled",
    "conversation.failed",
    "conversation.deleted",
];

/// Waits until the conversation is no longer active (its run ended), at most `timeout`.
/// Listens to the event log through the edge's hub, with a database check every second as a
/// backstop. Returns whether it settled.
pub async fn wait_settled(
    circles: &Circles,
    hub: &Hub,
    id: i64,
    timeout: Duration,
) -> Result<bool, CircleError> {
    let mut events = hub.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status: Option<String> = {
            let c = circles.pool.get().await?;
            c.query_opt(
                "SELECT status::text AS status FROM communication.conversations WHERE id = $1",
                &[&id],
            )
            .await?
            .map(|r| r.try_get("status"))
            .transpose()?
        };
        if status.as_deref() != Some("active") {
            return Ok(true);
        }
        let tick = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            tokio::select! {
                batch = events.recv() => match batch {
                    Ok(batch) => {
                        let ours = batch.iter().any(|e| {
                            SETTLED.contains(&e.kind.as_str())
                                && e.payload.get("conversation_id").and_then(Value::as_i64) == Some(id)
                        });
                        if ours {
                            break;
                        }
                    }
                    // Missed some: check the database.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    // No more events (shutting down): the database check, once a second.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(tick.min(deadline)).await;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(tick.min(deadline)) => break,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let c = circles.pool.get().await?;
            let status: Option<String> = c
                .query_opt(
                    "SELECT status::text AS status FROM communication.conversations WHERE id = $1",
                    &[&id],
                )
                .await?
                .map(|r| r.try_get("status"))
                .transpose()?;
            return Ok(status.as_deref() != Some("active"));
        }
    }
}
