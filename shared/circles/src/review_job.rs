//! `circle_task.review` `{task_id, iteration, reviewer_id}` (queue `circles`): the automatic
//! review. The reviewer — a member other than the author — answers through the agent runtime
//! (its persona and model, no tools) with a JSON verdict `{verdict: approve|request_changes,
//! comments, quality_score 0..1}`, validated against a JSON Schema; an invalid answer is asked
//! again with the validation errors, up to `CIRCLE_REVIEW_ATTEMPTS` model calls. Still invalid,
//! or the reviewer unusable: the task stays in review for a human, with that reason and a
//! `task.review_failed` event. The verdict applies only to the iteration it reviewed (see
//! `review`), so a retried job never applies one twice.

use gathering_agents::{AgentError, OnceOptions};
use gathering_events::publish_in;
use gathering_queue::{HandlerResult, JobContext, JobError, Outcome};
use serde_json::{Value, json};

use crate::error::CircleError;
use crate::review::{self, Reviewer, Verdict};
use crate::tasks::{self, TaskRow};
use crate::{Workers, events};

const REVIEW_SYSTEM: &str = "Tu relis le travail d'un autre membre de ton cercle. Juge s'il remplit la tâche. \
     Réponds uniquement par un objet JSON : {\"verdict\": \"approve\" ou \"request_changes\", \
     \"comments\": \"tes remarques\", \"quality_score\": nombre de 0 à 1}.";

pub async fn handle(workers: Workers, ctx: JobContext) -> HandlerResult {
    let p = &ctx.job.payload;
    let field = |k: &str| p.get(k).and_then(Value::as_i64);
    let (Some(task_id), Some(iteration), Some(reviewer)) =
        (field("task_id"), field("iteration"), field("reviewer_id"))
    else {
        return Err(JobError::discard(
            "payload needs integer task_id, iteration and reviewer_id",
        ));
    };
    let Ok(iteration) = i32::try_from(iteration) else {
        return Err(JobError::discard("iteration out of range"));
    };
    match run(&workers, task_id, iteration, reviewer, &ctx).await {
        Ok(()) => Ok(Outcome::Completed),
        Err(e) => Err(JobError::retry(e)),
    }
}

fn is_current(task: &TaskRow, iteration: i32, reviewer: i64) -> bool {
    task.status == "in_review"
        && task.iteration == iteration
        && task.reviewer_agent_id == Some(reviewer)
}

fn prompt(circle: &str, task: &TaskRow) -> String {
    let result: String = task
        .result
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(30_000)
        .collect();
    let mut p = format!(
        "Relis la tâche #{} du cercle « {circle} » : {}\n",
        task.id, task.title
    );
    if !task.description.trim().is_empty() {
        p.push_str(&format!("\nConsigne :\n{}\n", task.description));
    }
    if !task.required.is_empty() {
        p.push_str(&format!(
            "\nCompétences requises : {}\n",
            task.required.join(", ")
        ));
    }
    if !task.files_modified.is_empty() {
        p.push_str(&format!(
            "Fichiers modifiés : {}\n",
            task.files_modified.join(", ")
        ));
    }
    p.push_str(&format!(
        "\nRésultat livré (version {}) :\n{result}\n\nDonne ton verdict en JSON.",
        task.iteration
    ));
    p
}

async fn run(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    reviewer: i64,
    ctx: &JobContext,
) -> Result<(), CircleError> {
    let task = {
        let c = workers.circles.pool.get().await?;
        tasks::read(&c, task_id).await?
    };
    let Some((circle, _, task)) = task else {
        return Ok(());
    };
    if !is_current(&task, iteration, reviewer) {
        return Ok(());
    }
    let validator = jsonschema::validator_for(&review::verdict_schema())
        .map_err(|e| CircleError::BadRequest(format!("verdict schema: {e}")))?;
    let options = OnceOptions {
        extra_system: Some(REVIEW_SYSTEM.into()),
        ..OnceOptions::default()
    };
    let base = prompt(&circle, &task);
    let mut asked = base.clone();
    let mut last_error = String::new();
    for call in 1..=workers.circles.config.review_attempts {
        let request_id = format!(
            "circle-review-{task_id}-{iteration}-{}-{call}",
            ctx.job.attempt
        );
        let answer = workers
            .agents
            .run_once_with(reviewer, &asked, &options, &request_id, &ctx.cancel)
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(AgentError::Cancelled) => return Err(CircleError::BadRequest("cancelled".into())),
            Err(e @ (AgentError::NotFound(_) | AgentError::Invalid(_))) => {
                return leave_to_human(
                    workers,
                    task_id,
                    iteration,
                    reviewer,
                    &format!("reviewer unavailable: {e}"),
                )
                .await;
            }
            Err(e) if ctx.job.attempt >= ctx.job.max_attempts => {
                return leave_to_human(
                    workers,
                    task_id,
                    iteration,
                    reviewer,
                    &format!("error: {e}"),
                )
                .await;
            }
            Err(e) => return Err(e.into()),
        };
        match review::parse_verdict(&out.content, &validator) {
            Ok(verdict) => return apply(workers, task_id, iteration, reviewer, &verdict).await,
            Err(why) => {
                tracing::info!(task_id, call, error = %why, "invalid review verdict; asking again");
                last_error = why;
                asked = format!(
                    "{base}\n\nTa réponse précédente n'était pas valide ({last_error}). \
                     Réponds uniquement par l'objet JSON demandé."
                );
            }
        }
    }
    leave_to_human(
        workers,
        task_id,
        iteration,
        reviewer,
        &format!("no valid verdict: {last_error}"),
    )
    .await
}

async fn apply(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    reviewer: i64,
    verdict: &Verdict,
) -> Result<(), CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some((circle, task)) = tasks::lock(&tx, task_id).await? else {
        return Ok(());
    };
    let max_rounds = circle.max_rounds(workers.circles.config.max_review_rounds);
    let (_, stats) = review::apply(
        &tx,
        &circle,
        &task,
        iteration,
        &Reviewer::Agent(reviewer),
        verdict,
        max_rounds,
    )
    .await?;
    tx.commit().await?;
    stats.apply(&workers.circles.pool).await;
    Ok(())
}

/// The automatic review could not conclude: a human decides (approve/reject), and is told.
async fn leave_to_human(
    workers: &Workers,
    task_id: i64,
    iteration: i32,
    reviewer: i64,
    why: &str,
) -> Result<(), CircleError> {
    let mut client = workers.circles.pool.get().await?;
    let tx = client.transaction().await?;
    let Some((circle, task)) = tasks::lock(&tx, task_id).await? else {
        return Ok(());
    };
    if !is_current(&task, iteration, reviewer) {
        return Ok(());
    }
    let reason: String = format!("automatic review failed ({why}); awaiting a human review")
        .chars()
        .take(2000)
        .collect();
    tx.execute(
        "UPDATE circle.tasks SET status_reason = $2, job_id = NULL WHERE id = $1",
        &[&task_id, &reason],
    )
    .await?;
    publish_in(
        &tx,
        &[events::task(
            "task.review_failed",
            circle.id,
            &circle.name,
            task_id,
            json!({"reviewer_id": reviewer, "iteration": iteration, "reason": reason}),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
