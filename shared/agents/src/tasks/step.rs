//! Committing a background task's progress: each step's audit rows, its checkpoint (the whole
//! conversation, so another executor resumes from it) and event in one transaction; and the
//! task's end, with the goal it executes, in another.

use std::time::Instant;

use gathering_db::Pool;
use gathering_events::publish_in;
use gathering_proto::v1 as pb;
use serde_json::{Value, json};

use super::event;
use crate::AgentError;
use crate::goals::execution::{self as goal_execution, TaskChange};
use crate::llm::Message;

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

pub(super) fn from_json(v: &Value) -> Vec<Message> {
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
pub(super) enum End {
    Completed(String),
    Failed(String),
    Timeout,
    /// Paused or cancelled from outside: the row already says so.
    Stopped,
}

#[derive(Default)]
pub(super) struct StepCounts {
    pub(super) llm_calls: i32,
    pub(super) tokens: i32,
    pub(super) tool_calls: i32,
}

/// One audit row of `circle.background_task_steps`.
pub(super) struct StepRow {
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
    pub(super) fn llm(
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

    pub(super) fn tool(
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

    pub(super) fn checkpoint(step: i32) -> Self {
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

/// The task whose steps are committed.
pub(super) struct Progress<'a> {
    pub(super) pool: &'a Pool,
    pub(super) task_id: i64,
    pub(super) agent_id: i64,
    pub(super) max_steps: i32,
}

impl Progress<'_> {
    /// Commits one step: its audit rows, the task's progress and checkpoint, and a progress
    /// event.
    pub(super) async fn save(
        &self,
        step: i32,
        messages: &[Message],
        errors: i32,
        rows: &[StepRow],
        last_action: Option<&str>,
        counts: &StepCounts,
    ) -> Result<(), AgentError> {
        let Progress {
            pool,
            task_id,
            agent_id,
            max_steps,
        } = *self;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let steps: Vec<i32> = rows.iter().map(|r| r.step).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.action_type).collect();
        let outputs: Vec<Option<&str>> = rows.iter().map(|r| r.action_output.as_deref()).collect();
        let tool_names: Vec<Option<&str>> = rows.iter().map(|r| r.tool_name.as_deref()).collect();
        let tool_inputs: Vec<Option<&Value>> = rows.iter().map(|r| r.tool_input.as_ref()).collect();
        let tool_outputs: Vec<Option<&Value>> =
            rows.iter().map(|r| r.tool_output.as_ref()).collect();
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
}

pub(super) async fn finish(
    pool: &Pool,
    task_id: i64,
    agent_id: i64,
    end: End,
) -> Result<(), AgentError> {
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
            crate::counters::task_completed(&tx, agent_id).await?;
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
