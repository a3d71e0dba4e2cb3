//! `scheduled_action.dispatch`: does what a fired schedule asks, and records the outcome on
//! its run (`circle.scheduled_action_runs`).
//!
//! - `run_task` / `execute_pipeline`: in one transaction, the background task (or pipeline
//!   run, through `gathering_pipeline::store::start_run_in`: validated, with its definition
//!   snapshot and node rows) is created `pending`, its job is enqueued for the agents (or
//!   pipelines) runtime, and
//!   the run becomes `running`, linked to it. From then on the run follows the task's (or
//!   pipeline run's) status through a database trigger (migration V40). A retried job sees
//!   the run already `running` and does nothing: one task per run.
//! - `send_notification` / `call_api`: the notifications or http tool (SSRF-guarded) is called
//!   and the run completes or fails with its answer. These are at-least-once: an executor lost
//!   mid-call leaves the run `running`, and the job's next attempt calls again.
//!
//! # Retries
//!
//! A failed action with `retry_on_failure` is retried up to `max_retries` times, each after
//! `retry_delay_seconds`: the run goes back to `pending` with `retry_count + 1` and the job
//! snoozes for the delay (a durable timer in the queue, not a sleeping worker). The job's own
//! attempts (`DISPATCH_ATTEMPTS`, the queue's back-off) only cover infrastructure failures.
//!
//! With `allow_concurrent` off, a run waits while an earlier run of its schedule is still
//! running (catch-up runs execute one after another).

use std::time::{Duration, Instant};

use gathering_agents::tasks::{self, NewTask, TaskError};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_events::{NewEvent, publish_in};
use gathering_pipeline::{PipelineError, store};
use gathering_queue::{
    Backoff, HandlerResult, JobContext, JobError, KindOptions, Outcome, Registry,
};
use gathering_schedule::action::{self, ActionType};
use gathering_schedule::run_state;
use gathering_schedule::store::{DISPATCH_KIND, action_event};
use gathering_tools::{CallContext, Grants, Permission};
use serde_json::{Value, json};

use crate::deps::Deps;

/// Longest a notification or API action may take.
const ACTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a run waiting for an earlier one (allow_concurrent off) looks again.
const SERIAL_WAIT: Duration = Duration::from_secs(2);
/// Largest result kept on a run.
const MAX_RESULT_BYTES: usize = 64 * 1024;

pub fn register(registry: &mut Registry, deps: &Deps) {
    let deps = deps.clone();
    let options = KindOptions {
        timeout: Some(ACTION_TIMEOUT + Duration::from_secs(30)),
        backoff: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: 0.2,
        },
    };
    registry.register_with(DISPATCH_KIND, options, move |ctx| {
        dispatch(deps.clone(), ctx)
    });
}

const LOAD_SQL: &str = "
SELECT r.status::text AS run_status, r.retry_count,
       sa.id AS action_id, sa.agent_id, sa.circle_id, sa.goal, sa.max_steps, sa.timeout_seconds,
       sa.action_type, sa.action_config, sa.metadata, sa.retry_on_failure, sa.max_retries,
       sa.retry_delay_seconds, sa.allow_concurrent, sa.created_by,
       EXISTS (SELECT 1 FROM circle.scheduled_action_runs o
               WHERE o.scheduled_action_id = r.scheduled_action_id AND o.id < r.id
                 AND o.status = 'running'
                 AND o.started_at > now() - make_interval(secs => sa.timeout_seconds))
           AS earlier_running
FROM circle.scheduled_action_runs r
JOIN circle.scheduled_actions sa ON sa.id = r.scheduled_action_id
WHERE r.id = $1
FOR UPDATE OF r";

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::retry(e)
}

/// The schedule and run as the job found them.
struct Loaded {
    run_status: String,
    retry_count: i32,
    action_id: i64,
    action_type: String,
    config: Value,
    metadata: Value,
    retry_on_failure: bool,
    max_retries: i32,
    retry_delay: Duration,
    allow_concurrent: bool,
    earlier_running: bool,
}

impl Loaded {
    fn from_row(r: &Row) -> Result<Loaded, PgError> {
        Ok(Loaded {
            run_status: r.try_get("run_status")?,
            retry_count: r.try_get("retry_count")?,
            action_id: r.try_get("action_id")?,
            action_type: r.try_get("action_type")?,
            config: r.try_get("action_config")?,
            metadata: r.try_get("metadata")?,
            retry_on_failure: r.try_get("retry_on_failure")?,
            max_retries: r.try_get("max_retries")?,
            retry_delay: Duration::from_secs(
                r.try_get::<_, i32>("retry_delay_seconds")?.max(0) as u64
            ),
            allow_concurrent: r.try_get("allow_concurrent")?,
            earlier_running: r.try_get("earlier_running")?,
        })
    }
}

/// An action that did not do what it should (recorded on the run, maybe retried) — as opposed
/// to an infrastructure error, which fails the job attempt.
struct ActionFailed {
    message: String,
    data: Value,
    /// False for settings that cannot work (unknown action, missing pipeline): no retry.
    retryable: bool,
}

impl ActionFailed {
    /// A failure that retrying cannot fix.
    fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: Value::Null,
            retryable: false,
        }
    }
}

async fn dispatch(deps: Deps, ctx: JobContext) -> HandlerResult {
    let run_id = ctx
        .job
        .payload
        .get("run_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| JobError::discard("payload has no run_id"))?;
    let started = Instant::now();
    let mut client = deps.pool.get().await.map_err(retry)?;
    let tx = client.transaction().await.map_err(retry)?;
    let Some(row) = tx.query_opt(LOAD_SQL, &[&run_id]).await.map_err(retry)? else {
        // The schedule was deleted with its runs.
        return Ok(Outcome::Completed);
    };
    let run = Loaded::from_row(&row).map_err(retry)?;
    let action = ActionType::parse(&run.action_type).ok();
    let calls_out = matches!(
        action,
        Some(ActionType::SendNotification | ActionType::CallApi)
    );
    // Pending: to do. Running: a notification/API call an earlier attempt did not finish.
    // Anything else is settled.
    if !(run.run_status == "pending" || (run.run_status == "running" && calls_out)) {
        tx.commit().await.map_err(retry)?;
        return Ok(Outcome::Completed);
    }
    if !run.allow_concurrent && run.earlier_running {
        tx.commit().await.map_err(retry)?;
        return Ok(Outcome::Snooze {
            delay: SERIAL_WAIT,
            payload: None,
        });
    }
    let Some(action) = action else {
        let message = format!(
            "Unknown action_type '{}' for action {}",
            run.action_type, run.action_id
        );
        drop(tx);
        return settle(
            &deps,
            run_id,
            &run,
            Err(ActionFailed::fatal(message)),
            started,
        )
        .await;
    };
    let outcome = match action {
        ActionType::RunTask => start_task(&tx, run_id, &row, &run, deps.max_live_tasks).await?,
        ActionType::ExecutePipeline => start_pipeline(&tx, run_id, &run).await?,
        ActionType::SendNotification | ActionType::CallApi => {
            run_state::started(&tx, run_id, None, None)
                .await
                .map_err(retry)?;
            tx.commit().await.map_err(retry)?;
            let outcome = call_tool(&deps, &ctx, action, &run).await;
            return settle(&deps, run_id, &run, outcome, started).await;
        }
    };
    match outcome {
        // The task or pipeline run exists, linked and queued: the run follows it from here.
        Ok(_) => {
            tx.commit().await.map_err(retry)?;
            Ok(Outcome::Completed)
        }
        Err(failed) => {
            drop(tx);
            settle(&deps, run_id, &run, Err(failed), started).await
        }
    }
}

/// `run_task`: the background task, its job, the link and the event, in `tx`.
async fn start_task<C: GenericClient>(
    tx: &C,
    run_id: i64,
    row: &Row,
    run: &Loaded,
    max_live: i64,
) -> Result<Result<Value, ActionFailed>, JobError> {
    let cfg = &run.config;
    let goal: String = match cfg.get("goal").and_then(Value::as_str) {
        Some(g) => g.to_owned(),
        None => row.try_get("goal").map_err(retry)?,
    };
    if goal.trim().is_empty() {
        return Ok(Err(ActionFailed::fatal(
            "run_task needs a goal (the schedule's goal or action_config.goal)",
        )));
    }
    let max_steps: i32 = match cfg.get("max_steps").and_then(Value::as_i64) {
        Some(n) => n.clamp(1, 500) as i32,
        None => row.try_get("max_steps").map_err(retry)?,
    };
    let timeout: i32 = match cfg.get("timeout_seconds").and_then(Value::as_i64) {
        Some(n) => n.clamp(1, 86_400) as i32,
        None => row.try_get("timeout_seconds").map_err(retry)?,
    };
    let mut context = cfg
        .get("goal_context")
        .filter(|c| c.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Value::Object(m) = &mut context {
        m.insert("scheduled_action_id".into(), json!(run.action_id));
        m.insert("scheduled_action_run_id".into(), json!(run_id));
    }
    let agent_id: i64 = row.try_get("agent_id").map_err(retry)?;
    let task = NewTask {
        agent_id,
        goal: goal.clone(),
        circle_id: row.try_get("circle_id").map_err(retry)?,
        goal_context: context,
        max_steps,
        timeout_seconds: timeout,
        checkpoint_interval: 5,
        created_by: row.try_get("created_by").map_err(retry)?,
    };
    // The same path as the API: the global live-task limit applies to scheduled tasks too.
    let task_id = match tasks::create_in(tx, &task, max_live).await {
        Ok(id) => id,
        Err(TaskError::LimitReached(n)) => {
            return Ok(Err(ActionFailed {
                message: format!("Maximum concurrent tasks ({n}) reached"),
                data: Value::Null,
                retryable: true,
            }));
        }
        Err(TaskError::AgentNotFound(id)) => {
            return Ok(Err(ActionFailed::fatal(format!("Agent {id} not found"))));
        }
        Err(e) => return Err(retry(e)),
    };
    run_state::started(tx, run_id, Some(task_id), None)
        .await
        .map_err(retry)?;
    let result = json!({"action_type": "run_task", "task_id": task_id});
    publish_in(
        tx,
        &[
            action_event(
                "started",
                run.action_id,
                json!({"run_id": run_id, "background_task_id": task_id}),
                "executor",
            ),
            NewEvent::new(
                "background_task.created",
                json!({"task_id": task_id, "agent_id": agent_id, "goal": goal}),
            )
            .topic("tasks")
            .topic(format!("tasks:{task_id}"))
            .topic(format!("agents:{agent_id}"))
            .source("scheduler"),
        ],
    )
    .await
    .map_err(retry)?;
    Ok(Ok(result))
}

/// `execute_pipeline`: the pipeline run, its job, the link and the event, in `tx`.
async fn start_pipeline<C: GenericClient>(
    tx: &C,
    run_id: i64,
    run: &Loaded,
) -> Result<Result<Value, ActionFailed>, JobError> {
    let pipeline_id = match action::pipeline_id(&run.config, &run.metadata) {
        Ok(id) => id,
        Err(e) => return Ok(Err(ActionFailed::fatal(e.reason()))),
    };
    let pipeline_run = match store::start_run_in(tx, pipeline_id, &run.config).await {
        Ok(r) if r.status == "failed" => {
            // The definition does not validate: the schedule's run fails with the reason (and
            // the transaction, with the failed pipeline run, is rolled back by the caller).
            let reason = r
                .error_message
                .unwrap_or_else(|| "Validation failed".into());
            return Ok(Err(ActionFailed::fatal(format!(
                "Pipeline {pipeline_id}: {reason}"
            ))));
        }
        Ok(r) => r.id,
        Err(PipelineError::NotFound) => {
            return Ok(Err(ActionFailed::fatal(format!(
                "Pipeline {pipeline_id} not found"
            ))));
        }
        Err(PipelineError::NotActive(other)) => {
            return Ok(Err(ActionFailed::fatal(format!(
                "Pipeline {pipeline_id} is not active (status '{other}')"
            ))));
        }
        Err(e) => return Err(retry(e)),
    };
    run_state::started(tx, run_id, None, Some(pipeline_run))
        .await
        .map_err(retry)?;
    publish_in(
        tx,
        &[action_event(
            "started",
            run.action_id,
            json!({"run_id": run_id, "pipeline_id": pipeline_id, "pipeline_run_id": pipeline_run}),
            "executor",
        )],
    )
    .await
    .map_err(retry)?;
    Ok(Ok(json!({
        "action_type": "execute_pipeline",
        "pipeline_id": pipeline_id,
        "run_id": pipeline_run,
        "status": "pending",
    })))
}

/// `send_notification` / `call_api`: one tool call through the shared toolbox (its SSRF guard,
/// schema validation and limits), on behalf of no agent and with network permission only.
async fn call_tool(
    deps: &Deps,
    ctx: &JobContext,
    action: ActionType,
    run: &Loaded,
) -> Result<Value, ActionFailed> {
    let Some((tool, input)) = action::tool_call(action, &run.config) else {
        return Err(ActionFailed::fatal("not a tool action"));
    };
    let call = CallContext::new(Grants::of(&[Permission::Network]))
        .with_cancel(ctx.cancel.clone())
        .with_timeout(Some(ACTION_TIMEOUT));
    let response = deps.tools.execute(&tool, input, &call).await;
    let data = json!({
        "action_type": action.as_str(),
        "tool_name": tool,
        "success": response.success,
        "message": response.message,
        "data": response.data,
    });
    if response.success {
        Ok(data)
    } else {
        Err(ActionFailed {
            message: format!("{tool}: {}", response.message),
            data,
            retryable: true,
        })
    }
}

fn bounded(v: Value) -> Value {
    let size = serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size <= MAX_RESULT_BYTES {
        v
    } else {
        json!({"truncated": true, "bytes": size})
    }
}

fn summary(v: &Value) -> String {
    let text = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    text.chars().take(2000).collect()
}

/// Records an outcome on the run (and its event): completed; or failed, unless a retry is due,
/// in which case the job snoozes until then.
async fn settle(
    deps: &Deps,
    run_id: i64,
    run: &Loaded,
    outcome: Result<Value, ActionFailed>,
    started: Instant,
) -> HandlerResult {
    let elapsed = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let mut client = deps.pool.get().await.map_err(retry)?;
    let tx = client.transaction().await.map_err(retry)?;
    let result = match outcome {
        Ok(value) => {
            let value = bounded(value);
            let text = summary(&value);
            let done = run_state::completed(&tx, run_id, &value, &text, elapsed)
                .await
                .map_err(retry)?;
            if done {
                publish_in(
                    &tx,
                    &[action_event(
                        "completed",
                        run.action_id,
                        json!({"run_id": run_id, "result": value}),
                        "executor",
                    )],
                )
                .await
                .map_err(retry)?;
            }
            Ok(Outcome::Completed)
        }
        Err(failed) => {
            let data = bounded(failed.data);
            let message: String = failed.message.chars().take(2000).collect();
            if failed.retryable && run.retry_on_failure && run.retry_count < run.max_retries {
                let attempt = run_state::retrying(&tx, run_id, &message, &data)
                    .await
                    .map_err(retry)?;
                if let Some(attempt) = attempt {
                    publish_in(
                        &tx,
                        &[action_event(
                            "retrying",
                            run.action_id,
                            json!({"run_id": run_id, "error": message, "retry": attempt,
                                   "max_retries": run.max_retries,
                                   "delay_seconds": run.retry_delay.as_secs()}),
                            "executor",
                        )],
                    )
                    .await
                    .map_err(retry)?;
                }
                tracing::info!(run_id, error = %message, "scheduled action failed; retrying");
                Ok(Outcome::Snooze {
                    delay: run.retry_delay,
                    payload: None,
                })
            } else {
                let failed = run_state::failed(&tx, run_id, &message, &data, elapsed)
                    .await
                    .map_err(retry)?;
                if failed {
                    publish_in(
                        &tx,
                        &[action_event(
                            "failed",
                            run.action_id,
                            json!({"run_id": run_id, "error": message}),
                            "executor",
                        )],
                    )
                    .await
                    .map_err(retry)?;
                }
                tracing::warn!(run_id, error = %message, "scheduled action failed");
                Ok(Outcome::Completed)
            }
        }
    };
    tx.commit().await.map_err(retry)?;
    result
}
