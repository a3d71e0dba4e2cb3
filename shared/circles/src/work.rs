//! `circle_task.work` `{task_id, iteration}` (queue `circles`): an executor does one
//! iteration of a task through the agent runtime — the assignee's persona and memory-free
//! prompt, its enabled tools confined to the circle's project, the model through the gateway.
//!
//! The job claims the task under a token of its own attempt (`runner`); the result is stored
//! only if that token still holds and the task is still `in_progress` at this iteration. A
//! job whose executor died runs again elsewhere (the queue's lease), claims the task anew and
//! the dead attempt can no longer write; a duplicate or stale job finds nothing to claim. Model
//! failures retry with the queue's back-off; after the last attempt the task fails.

use gathering_agents::{AgentError, ChatOutcome, OnceOptions};
use gathering_events::publish_in;
use gathering_queue::{HandlerResult, JobContext, JobError, Outcome};
use serde_json::{Value, json};

use crate::circles::CircleRef;
use crate::error::CircleError;
use crate::tasks::{self, TaskRow};
use crate::{Workers, completion, events, input};

const WORK_SYSTEM: &str = "Tu travailles sur une tâche confiée par ton cercle. Utilise tes outils si nécessaire. \
     Ta réponse finale, sans appel d'outil, est le résultat livré (il sera relu par un autre membre).";

/// Tools whose successful calls modify these arguments' paths (conflict detection).
const WRITE_TOOLS: [(&str, &[&str]); 5] = [
    ("fs_write", &["path"]),
    ("fs_delete", &["path"]),
    ("fs_mkdir", &["path"]),
    ("fs_copy", &["destination"]),
    ("fs_move", &["source", "destination"]),
];

pub async fn handle(workers: Workers, ctx: JobContext) -> HandlerResult {
    let payload = &ctx.job.payload;
    let (Some(task_id), Some(iteration)) = (
        payload.get("task_id").and_then(Value::as_i64),
        payload
            .get("iteration")
            .and_then(Value::as_i64)
            .and_then(|i| i32::try_from(i).ok()),
    ) else {
        return Err(JobError::discard(
            "payload needs integer task_id and iteration",
        ));
    };
    let runner = format!(
        "{}:{}:{:016x}",
        ctx.job.id,
        ctx.job.attempt,
        rand::random::<u64>()
    );
    match run(&workers, task_id, iteration, &runner, &ctx).await {
        Ok(()) => Ok(Outcome::Completed),
        Err(e) => Err(JobError::retry(e)),
    }
}

async fn run(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    runner: &str,
    ctx: &JobContext,
) -> Result<(), CircleError> {
    let Some((circle, task)) = claim(workers, task_id, iteration, runner).await? else {
        return Ok(()); // finished, reassigned or a newer iteration: nothing to do
    };
    let Some(agent) = task.assigned_agent_id else {
        return Ok(());
    };
    let options = OnceOptions {
        project_id: circle.project_id,
        extra_system: Some(WORK_SYSTEM.into()),
        allow_tools: true,
        events: None,
    };
    let request_id = format!("circle-task-{task_id}-{iteration}-{}", ctx.job.attempt);
    let outcome = workers
        .agents
        .run_once_with(
            agent,
            &prompt(&circle, &task),
            &options,
            &request_id,
            &ctx.cancel,
        )
        .await;
    match outcome {
        Ok(out) => store(workers, task_id, iteration, runner, &out).await,
        Err(AgentError::Cancelled) => Err(CircleError::BadRequest("cancelled".into())),
        Err(e @ (AgentError::NotFound(_) | AgentError::Invalid(_))) => {
            fail(workers, task_id, runner, &format!("agent unavailable: {e}")).await
        }
        Err(e) if ctx.job.attempt >= ctx.job.max_attempts => {
            fail(workers, task_id, runner, &format!("error: {e}")).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Takes the task for this attempt; `None` when there is nothing to do.
async fn claim(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    runner: &str,
) -> Result<Option<(CircleRef, TaskRow)>, CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some((circle, task)) = tasks::lock(&tx, task_id).await? else {
        return Ok(None);
    };
    if task.iteration != iteration
        || !matches!(task.status.as_str(), "assigned" | "in_progress")
        || task.assigned_agent_id.is_none()
    {
        return Ok(None);
    }
    tx.execute(
        "UPDATE circle.tasks SET status = 'in_progress', runner = $2, status_reason = NULL, \
             started_at = COALESCE(started_at, now()) WHERE id = $1",
        &[&task_id, &runner],
    )
    .await?;
    if task.status == "assigned" {
        publish_in(
            &tx,
            &[events::task(
                "task.started",
                circle.id,
                &circle.name,
                task_id,
                json!({"status": "in_progress", "agent_id": task.assigned_agent_id, "iteration": iteration}),
            )],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some((circle, task)))
}

fn prompt(circle: &CircleRef, task: &TaskRow) -> String {
    let mut p = format!(
        "Tâche #{} du cercle « {} » : {}\n",
        task.id, circle.name, task.title
    );
    if !task.description.trim().is_empty() {
        p.push_str(&format!("\n{}\n", task.description));
    }
    if !task.required.is_empty() {
        p.push_str(&format!(
            "\nCompétences requises : {}\n",
            task.required.join(", ")
        ));
    }
    if !task.resources.is_empty() {
        p.push_str(&format!(
            "Fichiers ou ressources concernés : {}\n",
            task.resources.join(", ")
        ));
    }
    if task.iteration > 1
        && let Some(comments) = task.review_comments.as_deref().filter(|c| !c.is_empty())
    {
        let previous: String = task
            .result
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(20_000)
            .collect();
        p.push_str(&format!(
            "\nTa version précédente :\n{previous}\n\nLe relecteur a demandé des changements :\n{comments}\n\n\
             Reprends le travail en tenant compte de ces remarques.\n"
        ));
    }
    p.push_str("\nRéponds avec le résultat complet de la tâche.");
    p
}

/// Paths modified by the run's successful write tools.
pub fn touched_files(out: &ChatOutcome) -> Vec<String> {
    let mut files = Vec::new();
    for result in &out.tool_results {
        if result["success"] != true {
            continue;
        }
        let Some((_, args)) = WRITE_TOOLS.iter().find(|(n, _)| result["name"] == *n) else {
            continue;
        };
        let Some(call) = out
            .tool_calls
            .iter()
            .find(|c| c["id"] == result["tool_call_id"])
        else {
            continue;
        };
        for a in *args {
            if let Some(p) = call["arguments"][a].as_str() {
                let p = input::normalise_path(p);
                if !p.is_empty() && !files.contains(&p) && files.len() < input::MAX_PATHS {
                    files.push(p);
                }
            }
        }
    }
    files
}

/// Stores the result if this attempt still holds the task.
async fn store(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    runner: &str,
    out: &ChatOutcome,
) -> Result<(), CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some((circle, task)) = tasks::lock(&tx, task_id).await? else {
        return Ok(());
    };
    if task.runner.as_deref() != Some(runner)
        || task.status != "in_progress"
        || task.iteration != iteration
    {
        tracing::info!(
            task_id,
            "a newer attempt or a human decided this task: result dropped"
        );
        return Ok(());
    }
    let result: String = out.content.chars().take(input::MAX_RESULT).collect();
    let stats = completion::finish_work(&tx, &circle, &task, &result, &touched_files(out)).await?;
    tx.commit().await?;
    stats.apply(&workers.circles.pool).await;
    Ok(())
}

/// Fails the task if this attempt still holds it.
async fn fail(
    workers: &Workers,
    task_id: i64,
    runner: &str,
    reason: &str,
) -> Result<(), CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some((circle, task)) = tasks::lock(&tx, task_id).await? else {
        return Ok(());
    };
    if task.runner.as_deref() != Some(runner) || task.status != "in_progress" {
        return Ok(());
    }
    completion::fail(&tx, &circle, &task, reason).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_touched_by_successful_write_tools() {
        let out = ChatOutcome {
            content: String::new(),
            agent_id: 1,
            agent_name: "ann".into(),
            model: "m".into(),
            duration_ms: 0,
            tool_calls: vec![
                json!({"id": "1", "name": "fs_write", "arguments": {"path": "./src/a.rs", "content": "x"}}),
                json!({"id": "2", "name": "fs_move", "arguments": {"source": "b.rs", "destination": "c.rs"}}),
                json!({"id": "3", "name": "fs_write", "arguments": {"path": "failed.rs"}}),
                json!({"id": "4", "name": "fs_read", "arguments": {"path": "read.rs"}}),
            ],
            tool_results: vec![
                json!({"tool_call_id": "1", "name": "fs_write", "success": true}),
                json!({"tool_call_id": "2", "name": "fs_move", "success": true}),
                json!({"tool_call_id": "3", "name": "fs_write", "success": false}),
                json!({"tool_call_id": "4", "name": "fs_read", "success": true}),
            ],
            tokens_used: 0,
            iterations: 1,
            memory_recall: None,
        };
        assert_eq!(touched_files(&out), vec!["src/a.rs", "b.rs", "c.rs"]);
    }
}
