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

use std::time::Instant;

use chrono::{DateTime, Utc};
use gathering_db::Pool;
use gathering_events::{NewEvent, publish_in};
use gathering_proto::v1 as pb;
use gathering_queue::{HandlerResult, JobContext, JobError, NewJob, Outcome, Queue, enqueue_in};
use serde_json::{Value, json};

use crate::goals::execution::{self as goal_execution, TaskChange};
use crate::llm::Message;
use crate::prompt::{PromptParts, system_prompt};
use crate::runtime::AgentRuntime;
use crate::{AgentError, profile};

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

/// The task as its job handler reads it.
struct TaskRow {
    agent_id: i64,
    goal: String,
    goal_context: Value,
    status: String,
    max_steps: i32,
    timeout_seconds: i32,
    checkpoint_interval: i32,
    current_step: i32,
    checkpoint: Value,
    started_at: Option<DateTime<Utc>>,
}

async fn load(pool: &Pool, task_id: i64) -> Result<Option<TaskRow>, AgentError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT agent_id, goal, goal_context, status::text, max_steps, timeout_seconds, checkpoint_interval, \
                    current_step, checkpoint_data, started_at \
             FROM circle.background_tasks WHERE id = $1",
            &[&task_id],
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(TaskRow {
        agent_id: r.try_get(0)?,
        goal: r.try_get(1)?,
        goal_context: r.try_get(2)?,
        status: r.try_get(3)?,
        max_steps: r.try_get(4)?,
        timeout_seconds: r.try_get(5)?,
        checkpoint_interval: r.try_get(6)?,
        current_step: r.try_get(7)?,
        checkpoint: r.try_get(8)?,
        started_at: r.try_get(9)?,
    }))
}

fn to_json(messages: &[Message]) -> Value {
    Value::from(
        messages
            .iter()
            .map(|m| {
                json!({
                    "role": m.role,
                    "content": m.content,
                    "tool_call_id": m.tool_call_id,
                    "name": m.name,
                    "tool_calls": m.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments_json})).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>(),
    )
}

fn from_json(v: &Value) -> Vec<Message> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|m| Message {
                    role: m["role"].as_str().unwrap_or("user").to_owned(),
                    content: m["content"].as_str().unwrap_or("").to_owned(),
                    tool_call_id: m["tool_call_id"].as_str().unwrap_or("").to_owned(),
                    name: m["name"].as_str().unwrap_or("").to_owned(),
                    tool_calls: m["tool_calls"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| pb::ToolCall {
                                    id: c["id"].as_str().unwrap_or("").to_owned(),
                                    name: c["name"].as_str().unwrap_or("").to_owned(),
                                    arguments_json: c["arguments"]
                                        .as_str()
                                        .unwrap_or("{}")
                                        .to_owned(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How a task ended in this job.
enum End {
    Completed(String),
    Failed(String),
    Timeout,
    /// Paused or cancelled from outside: the row already says so.
    Stopped,
}

/// The job handler of `background_task.run`.
pub async fn handle(runtime: AgentRuntime, ctx: JobContext) -> HandlerResult {
    let task_id = ctx.job.payload["task_id"]
        .as_i64()
        .ok_or_else(|| JobError::discard("payload without task_id"))?;
    match run(&runtime, task_id, &ctx).await {
        Ok(()) => Ok(Outcome::Completed),
        // Infrastructure failures: the job retries and the task resumes from its checkpoint.
        Err(e) => Err(JobError::retry(e)),
    }
}

async fn run(runtime: &AgentRuntime, task_id: i64, ctx: &JobContext) -> Result<(), AgentError> {
    let pool = &runtime.pool;
    let Some(task) = load(pool, task_id).await? else {
        return Ok(());
    };
    if !matches!(task.status.as_str(), "pending" | "running") {
        return Ok(()); // paused, cancelled or finished meanwhile
    }
    let client = pool.get().await?;
    let profile = profile::load(&client, task.agent_id).await?;
    let started_at: DateTime<Utc> = client
        .query_one(
            "UPDATE circle.background_tasks SET status = 'running', started_at = COALESCE(started_at, now()) \
             WHERE id = $1 AND status IN ('pending', 'running') RETURNING started_at",
            &[&task_id],
        )
        .await?
        .try_get(0)?;
    if task.started_at.is_none() {
        publish_in(
            &client,
            &[event(
                "background_task.started",
                task_id,
                task.agent_id,
                json!({}),
            )],
        )
        .await?;
    }
    let tools = runtime.tool_definitions(&client, task.agent_id).await?;
    drop(client);

    let mut messages = from_json(&task.checkpoint["messages"]);
    if messages.is_empty() {
        let system = system_prompt(
            &profile,
            &PromptParts {
                extra: Some(
                    "Tu travailles seul sur un objectif, étape par étape. À chaque étape, utilise les outils \
                     si nécessaire. Quand l'objectif est atteint, réponds avec le résultat final sans appeler d'outil.",
                ),
                ..Default::default()
            },
        );
        messages.push(Message {
            role: "system".into(),
            content: system,
            ..Default::default()
        });
        let mut goal = format!("Objectif : {}", task.goal);
        if task.goal_context.as_object().is_some_and(|o| !o.is_empty()) {
            goal.push_str(&format!("\nContexte : {}", task.goal_context));
        }
        messages.push(Message {
            role: "user".into(),
            content: goal,
            ..Default::default()
        });
    }
    let mut step = task.current_step;
    let mut errors = task.checkpoint["errors"].as_i64().unwrap_or(0) as i32;
    let model = profile
        .model
        .clone()
        .unwrap_or_else(|| runtime.config.default_model.clone());
    let deadline = started_at + chrono::Duration::seconds(i64::from(task.timeout_seconds));

    let end = loop {
        if ctx.cancel.is_cancelled() {
            break End::Stopped;
        }
        if Utc::now() > deadline {
            break End::Timeout;
        }
        if step >= task.max_steps {
            break End::Failed(format!(
                "Reached max steps ({}) without completing goal",
                task.max_steps
            ));
        }
        step += 1;
        let began = Instant::now();
        let request_id = format!("task-{task_id}-step-{step}");
        let request = AgentRuntime::request(
            &profile,
            &model,
            messages.clone(),
            tools.clone(),
            &request_id,
        );
        let completion = tokio::select! {
            c = runtime.llm.complete("background-tasks", request) => c,
            _ = ctx.cancel.cancelled() => break End::Stopped,
        };
        let mut rows: Vec<StepRow> = Vec::new();
        let completion = match completion {
            Ok(c) => {
                errors = 0;
                c
            }
            Err(e) => {
                errors += 1;
                rows.push(StepRow::llm(
                    step,
                    "plan",
                    &e.to_string(),
                    &model,
                    0,
                    0,
                    began,
                    false,
                ));
                save_step(
                    pool,
                    task_id,
                    task.agent_id,
                    step,
                    task.max_steps,
                    &messages,
                    errors,
                    &rows,
                    Some("model call failed"),
                    &StepCounts::default(),
                )
                .await?;
                if errors >= MAX_ERRORS {
                    break End::Failed(format!("Too many errors: {e}"));
                }
                continue;
            }
        };
        let is_final = completion.tool_calls.is_empty();
        rows.push(StepRow::llm(
            step,
            if is_final { "complete_check" } else { "plan" },
            &completion.content,
            &completion.model,
            completion.input_tokens,
            completion.output_tokens,
            began,
            true,
        ));
        let mut counts = StepCounts {
            llm_calls: 1,
            tokens: (completion.input_tokens + completion.output_tokens) as i32,
            tool_calls: 0,
        };
        if is_final {
            save_step(
                pool,
                task_id,
                task.agent_id,
                step,
                task.max_steps,
                &messages,
                errors,
                &rows,
                Some("goal reached"),
                &counts,
            )
            .await?;
            break End::Completed(completion.content);
        }
        messages.push(Message {
            role: "assistant".into(),
            content: completion.content.clone(),
            tool_calls: completion.tool_calls.clone(),
            ..Default::default()
        });
        let mut last_action = String::new();
        for call in &completion.tool_calls {
            let began = Instant::now();
            let (response, input, reply) = runtime
                .call_tool(task.agent_id, call, None, &ctx.cancel)
                .await;
            counts.tool_calls += 1;
            last_action = format!(
                "{} ({})",
                call.name,
                if response.success { "ok" } else { "failed" }
            );
            rows.push(StepRow::tool(step, &call.name, &input, &response, began));
            messages.push(reply);
        }
        if ctx.cancel.is_cancelled() {
            // The tools ran; keep their results, then stop.
            save_step(
                pool,
                task_id,
                task.agent_id,
                step,
                task.max_steps,
                &messages,
                errors,
                &rows,
                Some(&last_action),
                &counts,
            )
            .await?;
            break End::Stopped;
        }
        if step % task.checkpoint_interval.max(1) == 0 {
            rows.push(StepRow::checkpoint(step));
        }
        save_step(
            pool,
            task_id,
            task.agent_id,
            step,
            task.max_steps,
            &messages,
            errors,
            &rows,
            Some(&last_action),
            &counts,
        )
        .await?;
    };
    finish(pool, task_id, task.agent_id, end).await
}

#[derive(Default)]
struct StepCounts {
    llm_calls: i32,
    tokens: i32,
    tool_calls: i32,
}

/// One audit row of `circle.background_task_steps`.
struct StepRow {
    step: i32,
    action_type: &'static str,
    action_output: Option<String>,
    tool_name: Option<String>,
    tool_input: Option<Value>,
    tool_output: Option<Value>,
    tool_success: Option<bool>,
    llm_model: Option<String>,
    tokens_input: i32,
    tokens_output: i32,
    duration_ms: i32,
    success: bool,
    error: Option<String>,
}

impl StepRow {
    #[allow(clippy::too_many_arguments)]
    fn llm(
        step: i32,
        kind: &'static str,
        output: &str,
        model: &str,
        tin: u32,
        tout: u32,
        began: Instant,
        ok: bool,
    ) -> Self {
        StepRow {
            step,
            action_type: kind,
            action_output: ok.then(|| output.chars().take(4000).collect()),
            tool_name: None,
            tool_input: None,
            tool_output: None,
            tool_success: None,
            llm_model: Some(model.to_owned()),
            tokens_input: tin as i32,
            tokens_output: tout as i32,
            duration_ms: began.elapsed().as_millis() as i32,
            success: ok,
            error: (!ok).then(|| output.chars().take(2000).collect()),
        }
    }

    fn tool(
        step: i32,
        name: &str,
        input: &Value,
        response: &gathering_tools::SkillResponse,
        began: Instant,
    ) -> Self {
        StepRow {
            step,
            action_type: "tool_call",
            action_output: Some(response.message.chars().take(4000).collect()),
            tool_name: Some(name.to_owned()),
            tool_input: Some(input.clone()),
            tool_output: Some(json!({"data": response.data, "error": response.error})),
            tool_success: Some(response.success),
            llm_model: None,
            tokens_input: 0,
            tokens_output: 0,
            duration_ms: began.elapsed().as_millis() as i32,
            success: response.success,
            error: response.error.clone(),
        }
    }

    fn checkpoint(step: i32) -> Self {
        StepRow {
            step,
            action_type: "checkpoint",
            action_output: Some(format!("checkpoint after step {step}")),
            tool_name: None,
            tool_input: None,
            tool_output: None,
            tool_success: None,
            llm_model: None,
            tokens_input: 0,
            tokens_output: 0,
            duration_ms: 0,
            success: true,
            error: None,
        }
    }
}

/// Commits one step: its audit rows, the task's progress and checkpoint, and a progress event.
#[allow(clippy::too_many_arguments)]
async fn save_step(
    pool: &Pool,
    task_id: i64,
    agent_id: i64,
    step: i32,
    max_steps: i32,
    messages: &[Message],
    errors: i32,
    rows: &[StepRow],
    last_action: Option<&str>,
    counts: &StepCounts,
) -> Result<(), AgentError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let steps: Vec<i32> = rows.iter().map(|r| r.step).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.action_type).collect();
    let outputs: Vec<Option<&str>> = rows.iter().map(|r| r.action_output.as_deref()).collect();
    let tool_names: Vec<Option<&str>> = rows.iter().map(|r| r.tool_name.as_deref()).collect();
    let tool_inputs: Vec<Option<&Value>> = rows.iter().map(|r| r.tool_input.as_ref()).collect();
    let tool_outputs: Vec<Option<&Value>> = rows.iter().map(|r| r.tool_output.as_ref()).collect();
    let tool_ok: Vec<Option<bool>> = rows.iter().map(|r| r.tool_success).collect();
    let models: Vec<Option<&str>> = rows.iter().map(|r| r.llm_model.as_deref()).collect();
    let tin: Vec<i32> = rows.iter().map(|r| r.tokens_input).collect();
    let tout: Vec<i32> = rows.iter().map(|r| r.tokens_output).collect();
    let durations: Vec<i32> = rows.iter().map(|r| r.duration_ms).collect();
    let oks: Vec<bool> = rows.iter().map(|r| r.success).collect();
    let errs: Vec<Option<&str>> = rows.iter().map(|r| r.error.as_deref()).collect();
    tx.execute(
        "INSERT INTO circle.background_task_steps (task_id, step_number, action_type, action_output, tool_name, tool_input, \
             tool_output, tool_success, llm_model, tokens_input, tokens_output, duration_ms, success, error_message) \
         SELECT $1, s, k, o, tn, ti, tou, tok, m, a, b, d, ok, e \
         FROM unnest($2::int4[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::bool[], $9::text[], \
                     $10::int4[], $11::int4[], $12::int4[], $13::bool[], $14::text[]) AS x(s, k, o, tn, ti, tou, tok, m, a, b, d, ok, e)",
        &[&task_id, &steps, &kinds, &outputs, &tool_names, &tool_inputs, &tool_outputs, &tool_ok, &models, &tin, &tout, &durations, &oks, &errs],
    )
    .await?;
    let progress = ((step * 100) / max_steps.max(1)).min(99);
    let checkpoint = json!({"messages": to_json(messages), "errors": errors, "step": step});
    tx.execute(
        "UPDATE circle.background_tasks SET current_step = $2, progress_percent = $3, last_action = COALESCE($4, last_action), \
             checkpoint_data = $5, last_checkpoint_at = now(), total_llm_calls = total_llm_calls + $6, \
             total_tokens_used = total_tokens_used + $7, total_tool_calls = total_tool_calls + $8 \
         WHERE id = $1",
        &[&task_id, &step, &progress, &last_action, &checkpoint, &counts.llm_calls, &counts.tokens, &counts.tool_calls],
    )
    .await?;
    publish_in(
        &tx,
        &[event(
            "background_task.step",
            task_id,
            agent_id,
            json!({"step": step, "progress_percent": progress, "last_action": last_action}),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn finish(pool: &Pool, task_id: i64, agent_id: i64, end: End) -> Result<(), AgentError> {
    let (status, result, error, kind) = match &end {
        End::Completed(r) => (
            "completed",
            Some(r.as_str()),
            None,
            "background_task.completed",
        ),
        End::Failed(e) => ("failed", None, Some(e.as_str()), "background_task.failed"),
        End::Timeout => (
            "timeout",
            None,
            Some("Task exceeded its timeout"),
            "background_task.timeout",
        ),
        End::Stopped => return Ok(()),
    };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let updated = tx
        .execute(
            "UPDATE circle.background_tasks SET status = $2::text::background_task_status, final_result = $3, \
                 error_message = $4, completed_at = now(), progress_percent = CASE WHEN $2 = 'completed' THEN 100 ELSE progress_percent END, \
                 progress_summary = COALESCE(left($3, 500), progress_summary) \
             WHERE id = $1 AND status = 'running'",
            &[&task_id, &status, &result, &error],
        )
        .await?;
    if updated == 1 {
        if status == "completed" {
            tx.execute(
                "UPDATE agent.agents SET tasks_completed = tasks_completed + 1 WHERE id = $1",
                &[&agent_id],
            )
            .await?;
        }
        publish_in(
            &tx,
            &[event(
                kind,
                task_id,
                agent_id,
                json!({"status": status, "result": result, "error": error}),
            )],
        )
        .await?;
        // The goal this task executes, if any, ends with it: same transaction, so once.
        let change = match (&end, error) {
            (End::Completed(r), _) => TaskChange::Completed(Some(r.as_str())),
            (_, Some(e)) => TaskChange::Failed(e),
            _ => TaskChange::Failed("Background task ended"),
        };
        goal_execution::task_changed(&tx, task_id, change).await?;
    }
    tx.commit().await?;
    Ok(())
}
