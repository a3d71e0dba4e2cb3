//! `conversation.run` `{conversation_id, seq}` (queue `circles`): takes the turns of one run.
//!
//! The job claims the conversation under a token of its own attempt (`runner`). Each turn:
//! re-read the state (cancelled, advanced, taken over?), pick the speaker (`turns`), run the
//! agent through the runtime with its answer streamed (`stream`), then store the message with
//! `UPDATE … WHERE runner = me AND turns_taken = n` and its `conversation.message` event in one
//! transaction — a turn is stored once whoever ran it, and an attempt that lost the
//! conversation stores nothing. At `turn_limit` (or an end marker) the run completes with a
//! summary. Model failures retry the job (the turn is taken again); after the last attempt
//! the conversation is cancelled with the error.

use gathering_agents::{AgentError, ChatOutcome, OnceOptions};
use gathering_events::publish_in;
use gathering_queue::{HandlerResult, JobContext, JobError, Outcome};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::stream;
use super::turns::{self, Participant, Strategy};
use crate::error::CircleError;
use crate::{Workers, events};

/// Earlier messages a turn sees, and how much of each.
const WINDOW: i64 = 30;
const MAX_MESSAGE_CHARS: usize = 4000;

struct Conv {
    id: i64,
    topic: String,
    strategy: Strategy,
    participants: Vec<Participant>,
    initial_prompt: String,
    project_id: Option<i64>,
    facilitator: Option<i64>,
}

struct Msg {
    agent_id: Option<i64>,
    name: String,
    content: String,
}

pub async fn handle(workers: Workers, ctx: JobContext) -> HandlerResult {
    let p = &ctx.job.payload;
    let (Some(id), Some(seq)) = (
        p.get("conversation_id").and_then(Value::as_i64),
        p.get("seq")
            .and_then(Value::as_i64)
            .and_then(|s| i32::try_from(s).ok()),
    ) else {
        return Err(JobError::discard(
            "payload needs integer conversation_id and seq",
        ));
    };
    let runner = format!(
        "{}:{}:{:016x}",
        ctx.job.id,
        ctx.job.attempt,
        rand::random::<u64>()
    );
    match run(&workers, id, seq, &runner, &ctx).await {
        Ok(()) => Ok(Outcome::Completed),
        Err(e) => Err(JobError::retry(e)),
    }
}

const CLAIM_SQL: &str = "
UPDATE communication.conversations SET runner = $3
WHERE id = $1 AND run_seq = $2 AND status = 'active' AND is_active
RETURNING topic, turn_strategy, participant_agent_ids, participant_names, initial_prompt,
          project_id, facilitator_agent_id";

async fn claim(
    workers: &Workers,
    id: i64,
    seq: i32,
    runner: &str,
) -> Result<Option<Conv>, CircleError> {
    let c = workers.circles.pool.get().await?;
    let Some(row) = c.query_opt(CLAIM_SQL, &[&id, &seq, &runner]).await? else {
        return Ok(None);
    };
    let ids: Vec<i64> = row.try_get("participant_agent_ids")?;
    let names: Vec<String> = row.try_get("participant_names")?;
    let strategy: String = row.try_get("turn_strategy")?;
    Ok(Some(Conv {
        id,
        topic: row.try_get("topic")?,
        strategy: Strategy::parse(&strategy).unwrap_or(Strategy::RoundRobin),
        participants: ids
            .into_iter()
            .zip(names)
            .map(|(id, name)| Participant { id, name })
            .collect(),
        initial_prompt: row.try_get("initial_prompt")?,
        project_id: row.try_get("project_id")?,
        facilitator: row.try_get("facilitator_agent_id")?,
    }))
}

/// `(still ours and active, turns_taken, turn_limit)`.
async fn state(workers: &Workers, id: i64, runner: &str) -> Result<(bool, i32, i32), CircleError> {
    let c = workers.circles.pool.get().await?;
    let row = c
        .query_opt(
            "SELECT status = 'active' AND is_active AND runner = $2 AS ours, turns_taken, turn_limit \
             FROM communication.conversations WHERE id = $1",
            &[&id, &runner],
        )
        .await?;
    let Some(row) = row else {
        return Ok((false, 0, 0));
    };
    Ok((
        row.try_get::<_, Option<bool>>("ours")?.unwrap_or(false),
        row.try_get("turns_taken")?,
        row.try_get("turn_limit")?,
    ))
}

async fn recent(workers: &Workers, id: i64) -> Result<Vec<Msg>, CircleError> {
    let c = workers.circles.pool.get().await?;
    let rows = c
        .query(
            "SELECT agent_id, COALESCE(agent_name, 'User') AS name, content FROM ( \
                 SELECT agent_id, agent_name, content, created_at, id FROM communication.messages \
                 WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2) m \
             ORDER BY created_at, id",
            &[&id, &WINDOW],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Msg {
                agent_id: r.try_get("agent_id")?,
                name: r.try_get("name")?,
                content: r.try_get("content")?,
            })
        })
        .collect()
}

fn transcript(msgs: &[Msg]) -> String {
    msgs.iter()
        .map(|m| {
            let text: String = m.content.chars().take(MAX_MESSAGE_CHARS).collect();
            format!("{}: {text}", m.name)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

async fn run(
    workers: &Workers,
    id: i64,
    seq: i32,
    runner: &str,
    ctx: &JobContext,
) -> Result<(), CircleError> {
    let Some(conv) = claim(workers, id, seq, runner).await? else {
        return Ok(());
    };
    if conv.participants.is_empty() {
        return end_with_error(workers, id, runner, "no participants").await;
    }
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(CircleError::BadRequest("cancelled".into()));
        }
        let (ours, taken, limit) = state(workers, id, runner).await?;
        if !ours {
            return Ok(()); // cancelled, deleted, or another attempt took over
        }
        let msgs = recent(workers, id).await?;
        if taken >= limit {
            let summary = summarize(workers, &conv, &msgs, ctx).await;
            if complete(workers, id, runner, &summary).await? {
                return Ok(());
            }
            continue; // advanced meanwhile: more turns
        }
        let turn = taken + 1;
        let last = msgs.iter().rev().find_map(|m| m.agent_id);
        let speaker = match conv.strategy {
            Strategy::RoundRobin => turns::round_robin(&conv.participants, last),
            Strategy::MentionBased => turns::by_mention(
                &conv.participants,
                msgs.last().map(|m| m.content.as_str()),
                last,
            ),
            Strategy::FreeForm => facilitate(workers, &conv, &msgs, last, turn, ctx).await,
        };
        let outcome = take_turn(workers, &conv, &msgs, speaker, turn, ctx).await;
        let content = match outcome {
            Ok(Some(out)) => out,
            Ok(None) => format!(
                "[Timeout - {} n'a pas répondu à temps]",
                conv.participants[speaker].name
            ),
            Err(AgentError::Cancelled) => return Err(CircleError::BadRequest("cancelled".into())),
            Err(e @ (AgentError::NotFound(_) | AgentError::Invalid(_))) => {
                return end_with_error(workers, id, runner, &e.to_string()).await;
            }
            Err(e) if ctx.job.attempt >= ctx.job.max_attempts => {
                return end_with_error(workers, id, runner, &e.to_string()).await;
            }
            Err(e) => return Err(e.into()),
        };
        if !store(workers, &conv, runner, turn, speaker, &content).await? {
            return Ok(());
        }
    }
}

fn turn_prompt(conv: &Conv, msgs: &[Msg], speaker: usize) -> String {
    let names: Vec<&str> = conv.participants.iter().map(|p| p.name.as_str()).collect();
    let mut p = format!(
        "Sujet : {}\nParticipants : {}\n\n",
        conv.topic,
        names.join(", ")
    );
    if msgs.is_empty() {
        if conv.initial_prompt.trim().is_empty() {
            p.push_str(&format!("Commençons à discuter de: {}\n", conv.topic));
        } else {
            p.push_str(&conv.initial_prompt);
            p.push('\n');
        }
    } else {
        p.push_str("Conversation jusqu'ici :\n\n");
        p.push_str(&transcript(msgs));
        p.push('\n');
    }
    p.push_str(&format!(
        "\nC'est ton tour, {}. Réponds à la conversation.",
        conv.participants[speaker].name
    ));
    p
}

/// One agent's turn, streamed; `None` when it timed out.
async fn take_turn(
    workers: &Workers,
    conv: &Conv,
    msgs: &[Msg],
    speaker: usize,
    turn: i32,
    ctx: &JobContext,
) -> Result<Option<String>, AgentError> {
    let who = &conv.participants[speaker];
    let others: Vec<String> = conv
        .participants
        .iter()
        .filter(|p| p.id != who.id)
        .map(|p| format!("@{}", p.name))
        .collect();
    let pool = workers.circles.pool.clone();
    stream::turn_start(&pool, conv.id, turn, who.id, &who.name).await;
    let (tx, rx) = mpsc::channel(1024);
    let forward = tokio::spawn(stream::forward(pool, conv.id, turn, who.id, rx));
    let options = OnceOptions {
        project_id: conv.project_id,
        extra_system: Some(format!(
            "Tu participes à une conversation de groupe sur « {} » avec {}. Réponds en ton nom, \
             brièvement. Pour passer la parole, mentionne @Nom. Quand la discussion est terminée, écris [DONE].",
            conv.topic,
            if others.is_empty() {
                "toi-même".to_owned()
            } else {
                others.join(", ")
            }
        )),
        allow_tools: true,
        events: Some(tx),
    };
    let request_id = format!("conversation-{}-turn-{turn}-{}", conv.id, ctx.job.attempt);
    let answer = tokio::time::timeout(
        workers.circles.config.turn_timeout,
        workers.agents.run_once_with(
            who.id,
            &turn_prompt(conv, msgs, speaker),
            &options,
            &request_id,
            &ctx.cancel,
        ),
    )
    .await;
    drop(options); // closes the token channel: the forwarder flushes and ends
    let _ = forward.await;
    match answer {
        Err(_) => Ok(None),
        Ok(Ok(out)) => Ok(Some(out.content)),
        Ok(Err(e)) => Err(e),
    }
}

/// The answer the facilitator is asked for (`turns::facilitator_choice` reads it).
const FACILITATOR_ANSWER: &str = r#"{"next_speaker": "Nom"}"#;

/// The facilitator's question: who of `eligible` speaks next, given the conversation so far.
fn facilitator_prompt(conv: &Conv, msgs: &[Msg], eligible: &[usize]) -> String {
    let names: Vec<&str> = eligible
        .iter()
        .map(|&i| conv.participants[i].name.as_str())
        .collect();
    format!(
        "Tu animes la conversation sur « {} ».\n\n{}\n\nQui doit parler maintenant parmi : {} ? \
         Réponds uniquement par l'objet JSON {FACILITATOR_ANSWER}.",
        conv.topic,
        if msgs.is_empty() {
            "(aucun message encore)".to_owned()
        } else {
            transcript(msgs)
        },
        names.join(", ")
    )
}

/// `free_form`: the facilitator (or the first participant) names the next speaker.
async fn facilitate(
    workers: &Workers,
    conv: &Conv,
    msgs: &[Msg],
    last: Option<i64>,
    turn: i32,
    ctx: &JobContext,
) -> usize {
    let fallback = turns::round_robin(&conv.participants, last);
    let eligible = turns::eligible(&conv.participants, last);
    if eligible.len() == 1 {
        return eligible[0];
    }
    let prompt = facilitator_prompt(conv, msgs, &eligible);
    let agent = conv.facilitator.unwrap_or(conv.participants[0].id);
    let request_id = format!(
        "conversation-{}-turn-{turn}-facilitator-{}",
        conv.id, ctx.job.attempt
    );
    let answer = tokio::time::timeout(
        workers.circles.config.turn_timeout,
        workers.agents.run_once_with(
            agent,
            &prompt,
            &OnceOptions::default(),
            &request_id,
            &ctx.cancel,
        ),
    )
    .await;
    match answer {
        Ok(Ok(out)) => turns::facilitator_choice(&out.content, &conv.participants, &eligible)
            .unwrap_or_else(|| {
                tracing::info!(
                    conversation = conv.id,
                    "facilitator answer invalid: round robin"
                );
                fallback
            }),
        _ => fallback,
    }
}

const STORE_SQL: &str = "
WITH conv AS (
    UPDATE communication.conversations SET turns_taken = turns_taken + 1, last_message_at = now(),
        turn_limit = CASE WHEN $8 THEN turns_taken + 1 ELSE turn_limit END
    WHERE id = $1 AND runner = $2 AND status = 'active' AND is_active AND turns_taken = $3 - 1
    RETURNING id
)
INSERT INTO communication.messages (conversation_id, role, agent_id, agent_name, content, mentions,
    mentioned_agent_ids, turn)
SELECT conv.id, 'assistant', $4, $5, $6, $7, $9, $3 FROM conv
RETURNING created_at";

/// Stores a turn if this attempt still runs the conversation at that turn.
async fn store(
    workers: &Workers,
    conv: &Conv,
    runner: &str,
    turn: i32,
    speaker: usize,
    content: &str,
) -> Result<bool, CircleError> {
    let who = &conv.participants[speaker];
    let mentioned = turns::mentions(content, &conv.participants);
    let names: Vec<&str> = mentioned
        .iter()
        .map(|&i| conv.participants[i].name.as_str())
        .collect();
    let ids: Vec<i64> = mentioned.iter().map(|&i| conv.participants[i].id).collect();
    let ends = turns::ends_conversation(content);
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            STORE_SQL,
            &[
                &conv.id, &runner, &turn, &who.id, &who.name, &content, &names, &ends, &ids,
            ],
        )
        .await?
    else {
        return Ok(false);
    };
    let at: chrono::DateTime<chrono::Utc> = row.try_get("created_at")?;
    publish_in(
        &tx,
        &[events::conversation(
            "conversation.message",
            conv.id,
            json!({"agent_id": who.id, "agent_name": who.name, "content": content,
                   "timestamp": at.to_rfc3339(), "turn": turn, "mentions": names}),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A few sentences on the run, by the facilitator's (or first participant's) model; a plain
/// account when the model cannot answer.
async fn summarize(workers: &Workers, conv: &Conv, msgs: &[Msg], ctx: &JobContext) -> String {
    let plain = || {
        let names: Vec<&str> = conv.participants.iter().map(|p| p.name.as_str()).collect();
        format!(
            "Conversation sur « {} » entre {} : {} message(s).",
            conv.topic,
            names.join(", "),
            msgs.len()
        )
    };
    if msgs.is_empty() {
        return plain();
    }
    let agent = conv.facilitator.unwrap_or(conv.participants[0].id);
    let prompt = format!(
        "Résume en quelques phrases la conversation sur « {} » : les points d'accord, les \
         décisions et ce qui reste ouvert.\n\n{}",
        conv.topic,
        transcript(msgs)
    );
    let request_id = format!("conversation-{}-summary-{}", conv.id, ctx.job.attempt);
    let answer: Result<Result<ChatOutcome, AgentError>, _> = tokio::time::timeout(
        workers.circles.config.turn_timeout,
        workers.agents.run_once_with(
            agent,
            &prompt,
            &OnceOptions::default(),
            &request_id,
            &ctx.cancel,
        ),
    )
    .await;
    match answer {
        Ok(Ok(out)) if !out.content.trim().is_empty() => out.content.chars().take(5000).collect(),
        _ => plain(),
    }
}

/// Completes the run if it is still ours and at its limit.
async fn complete(
    workers: &Workers,
    id: i64,
    runner: &str,
    summary: &str,
) -> Result<bool, CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "UPDATE communication.conversations SET status = 'completed', completed_at = now(), \
                 summary = $3, runner = NULL \
             WHERE id = $1 AND runner = $2 AND status = 'active' AND turns_taken >= turn_limit \
             RETURNING turns_taken, \
                 (SELECT count(*) FROM communication.messages WHERE conversation_id = $1) AS messages",
            &[&id, &runner, &summary],
        )
        .await?
    else {
        return Ok(false);
    };
    let turns: i32 = row.try_get("turns_taken")?;
    let messages: i64 = row.try_get("messages")?;
    publish_in(
        &tx,
        &[events::conversation(
            "conversation.completed",
            id,
            json!({"turns_taken": turns, "message_count": messages, "summary": summary}),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends the run with an error (status `cancelled`, `error` set).
async fn end_with_error(
    workers: &Workers,
    id: i64,
    runner: &str,
    error: &str,
) -> Result<(), CircleError> {
    let error: String = error.chars().take(2000).collect();
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "UPDATE communication.conversations SET status = 'cancelled', completed_at = now(), \
                 error = $3, runner = NULL WHERE id = $1 AND runner = $2 AND status = 'active'",
            &[&id, &runner, &error],
        )
        .await?;
    if n == 1 {
        publish_in(
            &tx,
            &[events::conversation(
                "conversation.failed",
                id,
                json!({"error": error}),
            )],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
