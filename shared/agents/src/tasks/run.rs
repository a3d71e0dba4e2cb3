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
        messages,
    } = prepare(runtime, task_id, &task).await?;
    let model = profile
        .model
        .clone()
        .unwrap_or_else(|| runtime.config.default_model.clone());
    let deadline = started_at + chrono::Duration::seconds(i64::from(task.timeout_seconds));
    let mut steps = Steps {
        runtime,
        ctx,
        task_id,
        agent_id: task.agent_id,
        checkpoint_interval: task.checkpoint_interval,
        progress: Progress {
            pool,
            task_id,
            agent_id: task.agent_id,
            max_steps: task.max_steps,
        },
        profile,
        model,
        tools,
        messages,
        errors: task.checkpoint["errors"].as_i64().unwrap_or(0) as i32,
    };
    let mut step = task.current_step;

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
        if let Some(end) = steps.take(step).await? {
            break end;
        }
    };
    finish(pool, task_id, task.agent_id, end).await
}

/// A run's steps: what each one reads, and the conversation and error count they carry from
/// one to the next.
struct Steps<'a> {
    runtime: &'a AgentRuntime,
    ctx: &'a JobContext,
    task_id: i64,
    agent_id: i64,
    checkpoint_interval: i32,
    progress: Progress<'a>,
    profile: profile::Profile,
    model: String,
    tools: Vec<gathering_proto::v1::ToolDefinition>,
    messages: Vec<Message>,
    /// Model calls failed in a row.
    errors: i32,
}

impl Steps<'_> {
    /// One plan → act → observe step, committed with its audit rows; `Some` when it ends the
    /// task.
    async fn take(&mut self, step: i32) -> Result<Option<End>, AgentError> {
        let began = Instant::now();
        let request_id = format!("task-{}-step-{step}", self.task_id);
        let request = AgentRuntime::request(
            &self.profile,
            &self.model,
            self.messages.clone(),
            self.tools.clone(),
            &request_id,
        );
        let completion = tokio::select! {
            c = self.runtime.llm.complete("background-tasks", request) => c,
            _ = self.ctx.cancel.cancelled() => return Ok(Some(End::Stopped)),
        };
        let completion = match completion {
            Ok(c) => {
                self.errors = 0;
                c
            }
            Err(e) => return self.model_failed(step, &e, began).await,
        };
        let is_final = completion.tool_calls.is_empty();
        let mut rows = vec![StepRow::llm(
            step,
            if is_final { "complete_check" } else { "plan" },
            &completion.content,
            &completion.model,
            completion.input_tokens,
            completion.output_tokens,
            began,
            true,
        )];
        let mut counts = StepCounts {
            llm_calls: 1,
            tokens: (completion.input_tokens + completion.output_tokens) as i32,
            tool_calls: 0,
        };
        if is_final {
            self.save(step, &rows, "goal reached", &counts).await?;
            return Ok(Some(End::Completed(completion.content)));
        }
        self.messages.push(Message {
            role: "assistant".into(),
            content: completion.content.clone(),
            tool_calls: completion.tool_calls.clone(),
            ..Default::default()
        });
        let last_action = self
            .act(step, &completion.tool_calls, &mut rows, &mut counts)
            .await;
        if self.ctx.cancel.is_cancelled() {
            // The tools ran; keep their results, then stop.
            self.save(step, &rows, &last_action, &counts).await?;
            return Ok(Some(End::Stopped));
        }
        if step % self.checkpoint_interval.max(1) == 0 {
            rows.push(StepRow::checkpoint(step));
        }
        self.save(step, &rows, &last_action, &counts).await?;
        Ok(None)
    }

    /// A failed model call is a failed `plan` step; the task fails after [`MAX_ERRORS`] in a
    /// row, and the next step tries again before that.
    async fn model_failed(
        &mut self,
        step: i32,
        e: &AgentError,
        began: Instant,
    ) -> Result<Option<End>, AgentError> {
        self.errors += 1;
        let rows = [StepRow::llm(
            step,
            "plan",
            &e.to_string(),
            &self.model,
            0,
            0,
            began,
            false,
        )];
        self.save(step, &rows, "model call failed", &StepCounts::default())
            .await?;
        if self.errors >= MAX_ERRORS {
            return Ok(Some(End::Failed(format!("Too many errors: {e}"))));
        }
        Ok(None)
    }

    /// Runs the step's tool calls in order, each reply added to the conversation; the last
    /// call as `name (ok|failed)`.
    async fn act(
        &mut self,
        step: i32,
        calls: &[gathering_proto::v1::ToolCall],
        rows: &mut Vec<StepRow>,
        counts: &mut StepCounts,
    ) -> String {
        let mut last_action = String::new();
        for call in calls {
            let began = Instant::now();
            let (response, input, reply) = self
                .runtime
                .call_tool(self.agent_id, call, None, &self.ctx.cancel)
                .await;
            counts.tool_calls += 1;
            last_action = format!(
                "{} ({})",
                call.name,
                if response.success { "ok" } else { "failed" }
            );
            rows.push(StepRow::tool(step, &call.name, &input, &response, began));
            self.messages.push(reply);
        }
        last_action
    }

    /// Commits the step with the conversation as it stands.
    async fn save(
        &self,
        step: i32,
        rows: &[StepRow],
        last_action: &str,
        counts: &StepCounts,
    ) -> Result<(), AgentError> {
        self.progress
            .save(
                step,
                &self.messages,
                self.errors,
                rows,
                Some(last_action),
                counts,
            )
            .await
    }
}
