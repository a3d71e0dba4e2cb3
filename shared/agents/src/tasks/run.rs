//! The `background_task.run` job: loads the task, rebuilds its conversation from the last
//! checkpoint, and runs plan → act → observe steps until the task ends or is stopped.

use std::time::Instant;

use chrono::{DateTime, Utc};
use gathering_db::Pool;
use gathering_events::publish_in;
use gathering_queue::{HandlerResult, JobContext, JobError, Outcome};
use serde_json::{Value, json};

use super::step::{End, Progress, StepCounts, StepRow, finish, from_json};
use super::{MAX_ERRORS, event};
use crate::llm::Message;
use crate::prompt::{PromptParts, system_prompt};
use crate::runtime::AgentRuntime;
use crate::{AgentError, profile};

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

/// What a job needs before its first step.
struct Prepared {
    profile: profile::Profile,
    tools: Vec<gathering_proto::v1::ToolDefinition>,
    started_at: DateTime<Utc>,
    messages: Vec<Message>,
}

/// Marks the task running (an event the first time), loads the agent and its tools, and
/// rebuilds the conversation from the checkpoint (or starts it from the goal).
async fn prepare(
    runtime: &AgentRuntime,
    task_id: i64,
    task: &TaskRow,
) -> Result<Prepared, AgentError> {
    let pool = &runtime.pool;
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
    Ok(Prepared {
        profile,
        tools,
        started_at,
        messages,
    })
}

async fn run(runtime: &AgentRuntime, task_id: i64, ctx: &JobContext) -> Result<(), AgentError> {
    let pool = &runtime.pool;
    let Some(task) = load(pool, task_id).await? else {
        return Ok(());
    };
    if !matches!(task.status.as_str(), "pending" | "running") {
        return Ok(()); // paused, cancelled or finished meanwhile
    }
    let Prepared {
        profile,
        tools,
        started_at,
        mut messages,
    } = prepare(runtime, task_id, &task).await?;
    let progress = Progress {
        pool,
        task_id,
        agent_id: task.agent_id,
        max_steps: task.max_steps,
    };
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
                progress
                    .save(
                        step,
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
            progress
                .save(
                    step,
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
            progress
                .save(step, &messages, errors, &rows, Some(&last_action), &counts)
                .await?;
            break End::Stopped;
        }
        if step % task.checkpoint_interval.max(1) == 0 {
            rows.push(StepRow::checkpoint(step));
        }
        progress
            .save(step, &messages, errors, &rows, Some(&last_action), &counts)
            .await?;
    };
    finish(pool, task_id, task.agent_id, end).await
}
