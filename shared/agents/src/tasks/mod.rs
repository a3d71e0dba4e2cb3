//! Background tasks (BEHAVIOUR A11): an agent works towards a goal on its own, step by step —
//! plan (a model call) → act (tool calls) → observe (results back to the model) → checkpoint —
//! until it answers without calling tools (the goal is reached), runs out of steps, errs too
//! often, times out, or is paused or cancelled.
//!
//! A task runs as one queue job on any executor. Each step commits its audit rows and the
//! whole conversation as the task's checkpoint before the next begins, so a task whose executor
//! dies resumes on another from its last completed step: earlier steps are not repeated. Pause
//! and cancel mark the row and cancel the job, which the queue notifies to whichever executor
//! holds it: the task stops within a second wherever it runs. The number of live tasks is
//! limited globally (one count under an advisory lock), not per process.
//!
//! `mod.rs` creates tasks and moves them between states from outside; `run.rs` is the job
//! that works on one; `step.rs` commits each step and the end.

mod run;
mod step;

pub use run::handle;

use gathering_db::Pool;
use gathering_events::{NewEvent, publish_in};
use gathering_queue::{NewJob, Queue, enqueue_in};
use serde_json::{Value, json};

use crate::AgentError;
use crate::goals::execution::{self as goal_execution, TaskChange};

pub const JOB_KIND: &str = "background_task.run";
pub const QUEUE: &str = "agents";
/// Serialises the live-task count with the insert that depends on it ("GATHTASK").
const CREATE_LOCK: i64 = 0x4741_5448_5441_534B;
/// Consecutive failed steps after which a task fails.
const MAX_ERRORS: i32 = 5;

#[derive(Debug, Clone)]
pub struct NewTask {
    pub agent_id: i64,
    pub goal: String,
    pub circle_id: Option<i64>,
    pub goal_context: Value,
    pub max_steps: i32,
    pub timeout_seconds: i32,
    pub checkpoint_interval: i32,
    pub created_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("Maximum concurrent tasks ({0}) reached")]
    LimitReached(i64),
    #[error("Agent {0} not found")]
    AgentNotFound(i64),
    #[error("Task not found")]
    NotFound,
    #[error("{0}")]
    InvalidState(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
}

impl From<gathering_db::tokio_postgres::Error> for TaskError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        TaskError::Agent(e.into())
    }
}

impl From<gathering_db::PoolError> for TaskError {
    fn from(e: gathering_db::PoolError) -> Self {
        TaskError::Agent(e.into())
    }
}

impl From<gathering_queue::QueueError> for TaskError {
    fn from(e: gathering_queue::QueueError) -> Self {
        TaskError::Agent(e.into())
    }
}

impl From<gathering_events::EventError> for TaskError {
    fn from(e: gathering_events::EventError) -> Self {
        TaskError::Agent(e.into())
    }
}

fn event(kind: &str, task_id: i64, agent_id: i64, data: Value) -> NewEvent {
    let mut payload = json!({"task_id": task_id, "agent_id": agent_id});
    if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), data) {
        p.extend(extra);
    }
    NewEvent::new(kind, payload)
        .topic("tasks")
        .topic(format!("tasks:{task_id}"))
        .topic(format!("agents:{agent_id}"))
        .source("agents")
}

fn job(task_id: i64) -> NewJob {
    NewJob::new(JOB_KIND, json!({"task_id": task_id}))
        .queue(QUEUE)
        .unique_key(format!("background_task:{task_id}"))
        .max_attempts(10)
}

/// Creates a task and its job in one transaction; over the global limit of live tasks,
/// nothing is created.
pub async fn create(pool: &Pool, task: &NewTask, max_live: i64) -> Result<i64, TaskError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let id = create_in(&tx, task, max_live).await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates a task and its job inside the caller's transaction (a scheduled `run_task` commits
/// them with its run). The live-task count is serialised by a transaction-scoped lock.
pub async fn create_in<C: gathering_db::GenericClient>(
    tx: &C,
    task: &NewTask,
    max_live: i64,
) -> Result<i64, TaskError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])
        .await?;
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM circle.background_tasks WHERE status IN ('pending', 'running')",
            &[],
        )
        .await?
        .try_get(0)?;
    if live >= max_live {
        return Err(TaskError::LimitReached(max_live));
    }
    if tx
        .query_opt(
            "SELECT 1 FROM agent.agents WHERE id = $1",
            &[&task.agent_id],
        )
        .await?
        .is_none()
    {
        return Err(TaskError::AgentNotFound(task.agent_id));
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO circle.background_tasks \
                 (agent_id, circle_id, goal, goal_context, max_steps, timeout_seconds, checkpoint_interval, created_by_user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &task.agent_id,
                &task.circle_id,
                &task.goal,
                &task.goal_context,
                &task.max_steps,
                &task.timeout_seconds,
                &task.checkpoint_interval,
                &task.created_by,
            ],
        )
        .await?
        .try_get(0)?;
    let job_id = enqueue_in(tx, &job(id)).await?.id;
    tx.execute(
        "UPDATE circle.background_tasks SET job_id = $2 WHERE id = $1",
        &[&id, &job_id],
    )
    .await?;
    publish_in(
        tx,
        &[event(
            "background_task.created",
            id,
            task.agent_id,
            json!({"goal": task.goal}),
        )],
    )
    .await?;
    Ok(id)
}

/// A task as `/background-tasks` shows it (`public.background_tasks_dashboard`).
pub async fn dashboard_row<C: gathering_db::GenericClient>(
    c: &C,
    task_id: i64,
) -> Result<Option<Value>, AgentError> {
    let row = c
        .query_opt(
            "SELECT to_jsonb(t) FROM public.background_tasks_dashboard t WHERE id = $1",
            &[&task_id],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Pauses a pending or running task: it stops after its current step and keeps its checkpoint.
pub async fn pause(pool: &Pool, queue: &Queue, task_id: i64) -> Result<(), TaskError> {
    let (agent_id, job_id) = transition(
        pool,
        task_id,
        &["pending", "running"],
        "paused",
        "background_task.paused",
    )
    .await?;
    if let Some(job) = job_id {
        queue.cancel(job).await?;
    }
    let _ = agent_id;
    Ok(())
}

/// Cancels a live task.
pub async fn cancel(pool: &Pool, queue: &Queue, task_id: i64) -> Result<(), TaskError> {
    let (_, job_id) = transition(
        pool,
        task_id,
        &["pending", "running", "paused"],
        "cancelled",
        "background_task.cancelled",
    )
    .await?;
    if let Some(job) = job_id {
        queue.cancel(job).await?;
    }
    Ok(())
}

/// Resumes a paused task from its checkpoint, on whichever executor takes the new job.
pub async fn resume(pool: &Pool, task_id: i64) -> Result<(), TaskError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT agent_id, status::text FROM circle.background_tasks WHERE id = $1 FOR UPDATE",
            &[&task_id],
        )
        .await?
        .ok_or(TaskError::NotFound)?;
    let (agent_id, status): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    if status != "paused" {
        return Err(TaskError::InvalidState(format!(
            "Task is {status}, not paused"
        )));
    }
    let job_id = enqueue_in(&tx, &job(task_id)).await?.id;
    tx.execute(
        "UPDATE circle.background_tasks SET status = 'pending', paused_at = NULL, job_id = $2 WHERE id = $1",
        &[&task_id, &job_id],
    )
    .await?;
    publish_in(
        &tx,
        &[event(
            "background_task.resumed",
            task_id,
            agent_id,
            json!({}),
        )],
    )
    .await?;
    goal_execution::task_changed(&tx, task_id, TaskChange::Resumed).await?;
    tx.commit().await?;
    Ok(())
}

async fn transition(
    pool: &Pool,
    task_id: i64,
    from: &[&str],
    to: &str,
    event_kind: &str,
) -> Result<(i64, Option<i64>), TaskError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt("SELECT agent_id, status::text, job_id FROM circle.background_tasks WHERE id = $1 FOR UPDATE", &[&task_id])
        .await?
        .ok_or(TaskError::NotFound)?;
    let (agent_id, status, job_id): (i64, String, Option<i64>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if !from.contains(&status.as_str()) {
        return Err(TaskError::InvalidState(format!(
            "Cannot change a task in '{status}' status to '{to}'"
        )));
    }
    tx.execute(
        "UPDATE circle.background_tasks SET status = $2::text::background_task_status, \
             paused_at = CASE WHEN $2 = 'paused' THEN now() ELSE paused_at END, \
             completed_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE completed_at END \
         WHERE id = $1",
        &[&task_id, &to],
    )
    .await?;
    publish_in(
        &tx,
        &[event(
            event_kind,
            task_id,
            agent_id,
            json!({"previous": status}),
        )],
    )
    .await?;
    let change = if to == "paused" {
        TaskChange::Paused
    } else {
        TaskChange::Failed("Background task cancelled")
    };
    goal_execution::task_changed(&tx, task_id, change).await?;
    tx.commit().await?;
    Ok((agent_id, job_id))
}

/// Deletes a finished task (its steps go with it). A live one (pending, running or paused)
/// must be cancelled first: [`TaskError::InvalidState`].
pub async fn delete<C: gathering_db::GenericClient>(
    client: &C,
    task_id: i64,
) -> Result<(), TaskError> {
    let row = client
        .query_opt(
            "WITH t AS (SELECT status::text AS status FROM circle.background_tasks WHERE id = $1), \
                  d AS (DELETE FROM circle.background_tasks WHERE id = $1 \
                        AND status NOT IN ('pending', 'running', 'paused') RETURNING id) \
             SELECT t.status, EXISTS (SELECT 1 FROM d) FROM t",
            &[&task_id],
        )
        .await?;
    let Some(row) = row else {
        return Err(TaskError::NotFound);
    };
    let status: String = row.try_get(0)?;
    let deleted: bool = row.try_get(1)?;
    if !deleted {
        return Err(TaskError::InvalidState(format!(
            "Cannot delete task in '{status}' status. Cancel it first."
        )));
    }
    Ok(())
}
