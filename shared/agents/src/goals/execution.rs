//! Goals executed by their agent: starting a goal may create a background task (the
//! `/background-tasks` machinery, `crate::tasks`) in the same transaction as the start, linked
//! by `goals.background_task_id`. What happens to the task then happens to the goal:
//!
//! - completed → the goal completes, with the task's answer as `result_summary`, the task as an
//!   artifact, its tokens and time in the activity and `actual_hours`;
//! - failed, timed out or cancelled → the attempt failed: the goal goes back to `pending` (to be
//!   started again) while attempts remain, else it fails;
//! - paused / resumed → the goal is paused / active again.
//!
//! Exactly once: these hooks run inside the transaction that changes the task's own status,
//! and that change is itself guarded (`WHERE status = 'running'` for the end of a run). A job
//! retried after a crash, or run twice, finds the task already finished, changes nothing, and
//! so never reaches the goal again; the goal side is guarded as well (only a goal still
//! `active`/`paused` on that very task is changed).

use gathering_db::{GenericClient, Pool};
use serde_json::{Value, json};

use super::lifecycle::{StatusChange, change_status, check_startable};
use super::record::{Locked, Note};
use super::settle::settle;
use super::{Actor, GoalError};
use crate::AgentError;
use crate::tasks::{self, NewTask};

/// How a goal's background task runs.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    pub max_steps: i32,
    pub timeout_seconds: i32,
    pub checkpoint_interval: i32,
    /// `BACKGROUND_TASKS_MAX_CONCURRENT`: over it the start is refused (429) and nothing changes.
    pub max_live_tasks: i64,
    pub created_by: Option<String>,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            max_steps: 50,
            timeout_seconds: 3600,
            checkpoint_interval: 5,
            max_live_tasks: 5,
            created_by: None,
        }
    }
}

/// Starts goal `id` and hands it to its agent as a background task; returns the task id.
pub async fn start_with_task(
    pool: &Pool,
    id: i64,
    opts: &ExecuteOptions,
    actor: &Actor,
) -> Result<i64, GoalError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let goal = Locked::load(&tx, id).await?;
    check_startable(&goal)?;
    let row = tx
        .query_one(
            "SELECT title, description, success_criteria, context, circle_id FROM agent.goals WHERE id = $1",
            &[&id],
        )
        .await?;
    let title: String = row.try_get("title")?;
    let description: String = row.try_get("description")?;
    let criteria: Option<String> = row.try_get("success_criteria")?;
    let context: Value = row.try_get("context")?;
    let mut text = title.clone();
    if !description.trim().is_empty() {
        text.push_str(&format!("\n\n{description}"));
    }
    if let Some(c) = criteria.filter(|c| !c.trim().is_empty()) {
        text.push_str(&format!("\n\nCritères de réussite : {c}"));
    }
    let task = NewTask {
        agent_id: goal.agent_id,
        goal: text,
        circle_id: row.try_get("circle_id")?,
        goal_context: json!({"goal_id": id, "context": context}),
        max_steps: opts.max_steps,
        timeout_seconds: opts.timeout_seconds,
        checkpoint_interval: opts.checkpoint_interval,
        created_by: opts.created_by.clone(),
    };
    let task_id = tasks::create_in(&tx, &task, opts.max_live_tasks).await?;
    tx.execute(
        "UPDATE agent.goals SET background_task_id = $2 WHERE id = $1",
        &[&id, &task_id],
    )
    .await?;
    let ch = StatusChange::to(
        "active",
        Note::new("started").data(json!({"background_task_id": task_id})),
    )
    .message(None)
    .attempt()
    .describe(format!(
        "Attempt {}/{}: handed to agent {} as background task {task_id}",
        goal.attempts + 1,
        goal.max_attempts,
        goal.agent_id
    ));
    let fx = change_status(&tx, &goal, ch, actor).await?;
    settle(&tx, fx).await?;
    tx.commit().await?;
    Ok(task_id)
}

/// How a goal's task changed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TaskChange<'a> {
    Completed(Option<&'a str>),
    /// Failed, timed out or cancelled: the attempt failed for this reason.
    Failed(&'a str),
    Paused,
    Resumed,
}

fn agent_error(e: GoalError) -> AgentError {
    match e {
        GoalError::Agent(e) => e,
        other => AgentError::Invalid(other.to_string()),
    }
}

/// Applies a task's change to the goal it executes, in the task's transaction.
pub(crate) async fn task_changed<C: GenericClient>(
    c: &C,
    task_id: i64,
    change: TaskChange<'_>,
) -> Result<(), AgentError> {
    apply(c, task_id, change).await.map_err(agent_error)
}

async fn apply<C: GenericClient>(
    c: &C,
    task_id: i64,
    change: TaskChange<'_>,
) -> Result<(), GoalError> {
    let from: &[&str] = match change {
        TaskChange::Paused => &["active"],
        TaskChange::Resumed => &["paused"],
        _ => &["active", "paused"],
    };
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let ids = c
        .query(
            "SELECT id FROM agent.goals WHERE background_task_id = $1 AND status::text = ANY ($2) ORDER BY id",
            &[&task_id, &from],
        )
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    let usage = c
        .query_one(
            "SELECT total_tokens_used, artifacts, \
                    extract(epoch FROM (COALESCE(completed_at, now()) - COALESCE(started_at, created_at)))::float8 AS secs \
             FROM circle.background_tasks WHERE id = $1",
            &[&task_id],
        )
        .await?;
    let tokens: i32 = usage.try_get("total_tokens_used")?;
    let secs: f64 = usage.try_get("secs")?;
    let task_artifacts: Value = usage.try_get("artifacts")?;
    for row in ids {
        let goal = Locked::load(c, row.try_get(0)?).await?;
        if goal.background_task_id != Some(task_id) || !from.contains(&goal.status) {
            continue;
        }
        let actor = Actor::agent(goal.agent_id);
        let mut ch = match change {
            TaskChange::Completed(result) => {
                let mut artifacts = vec![json!({"type": "background_task", "task_id": task_id})];
                if let Value::Array(a) = &task_artifacts {
                    artifacts.extend(a.iter().cloned());
                }
                let mut ch = StatusChange::to("completed", Note::new("completed")).message(None);
                ch.result_summary = result.map(|r| r.chars().take(20_000).collect());
                ch.note.description = Some(format!("Background task {task_id} completed"));
                ch.artifacts = Some(Value::Array(artifacts));
                ch.hours = secs / 3600.0;
                ch
            }
            TaskChange::Failed(why) if goal.attempts < goal.max_attempts => {
                let msg = format!(
                    "Attempt {}/{} failed: {why}",
                    goal.attempts, goal.max_attempts
                );
                let mut ch = StatusChange::to("pending", Note::new("attempt_failed"))
                    .message(Some(msg.clone()))
                    .describe(msg);
                ch.hours = secs / 3600.0;
                ch
            }
            TaskChange::Failed(why) => {
                let mut ch = StatusChange::to("failed", Note::new("failed"))
                    .message(Some(why.to_owned()))
                    .describe(format!(
                        "Attempt {}/{} failed: {why}",
                        goal.attempts, goal.max_attempts
                    ));
                ch.hours = secs / 3600.0;
                ch
            }
            TaskChange::Paused => StatusChange::to("paused", Note::new("paused"))
                .message(Some("Background task paused".into()))
                .describe(format!("Background task {task_id} paused")),
            TaskChange::Resumed => StatusChange::to("active", Note::new("resumed"))
                .message(None)
                .describe(format!("Background task {task_id} resumed")),
        };
        if matches!(change, TaskChange::Completed(_) | TaskChange::Failed(_)) {
            ch.note.tokens = tokens;
            ch.note.duration_ms = (secs * 1000.0).min(i32::MAX as f64) as i32;
        }
        ch.note.data = Some(json!({"background_task_id": task_id}));
        let fx = change_status(c, &goal, ch, &actor).await?;
        settle(c, fx).await?;
    }
    Ok(())
}
