//! The end of a piece of work, wherever it came from (an executor's result, a result submitted
//! through the API, a failure): the task goes to review or is completed, or fails; its slot is
//! given back and waiting work admitted; conflicts on the files it touched are recorded, and
//! those of a finished task resolved. Callers hold the circle's and the task's locks and have
//! checked the state they expect; everything here commits with their transaction.

use gathering_db::GenericClient;
use gathering_events::publish_in;
use gathering_queue::{NewJob, enqueue_in};
use serde_json::json;

use crate::circles::CircleRef;
use crate::error::CircleError;
use crate::stats::AgentStats;
use crate::tasks::TaskRow;
use crate::{QUEUE, conflicts, dispatch, events, routing};

/// The automatic review job of one iteration by one reviewer.
pub const REVIEW_KIND: &str = "circle_task.review";

pub fn review_job(task_id: i64, iteration: i32, reviewer: i64) -> NewJob {
    NewJob::new(
        REVIEW_KIND,
        json!({"task_id": task_id, "iteration": iteration, "reviewer_id": reviewer}),
    )
    .queue(QUEUE)
    .unique_key(format!("circle_review:{task_id}:{iteration}:{reviewer}"))
    .max_attempts(5)
}

const FINISH_SQL: &str = "
UPDATE circle.tasks SET result = $2, files_modified = $3, runner = NULL, job_id = NULL,
    dispatched = false, status_reason = NULL,
    status = CASE WHEN requires_review THEN 'in_review' ELSE 'completed' END,
    completed_at = CASE WHEN requires_review THEN NULL ELSE now() END,
    started_at = COALESCE(started_at, now())
WHERE id = $1
RETURNING status";

/// Stores the result of the current iteration: to review when the circle requires it (with a
/// reviewer and its job, or waiting for a human), else completed. The caller applies the
/// returned counters after its commit.
pub async fn finish_work<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
    result: &str,
    files: &[String],
) -> Result<AgentStats, CircleError> {
    let mut touched = task.files_modified.clone();
    for f in files {
        if !touched.contains(f) {
            touched.push(f.clone());
        }
    }
    let status: String = c
        .query_one(FINISH_SQL, &[&task.id, &result, &touched])
        .await?
        .try_get("status")?;
    conflicts::detect(c, circle, task.id, &touched, true).await?;
    let stats = if status == "completed" {
        completed(c, circle, task, None).await?
    } else {
        request_review(c, circle, task).await?;
        AgentStats::default()
    };
    dispatch::dispatch(c, circle.id).await?;
    Ok(stats)
}

/// Gives the task in review a reviewer and enqueues its review, or leaves it waiting for a
/// human (or for a member who can review) with that reason.
pub async fn request_review<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
) -> Result<Option<i64>, CircleError> {
    let candidates = routing::candidates(c, circle.id).await?;
    let kinds = routing::review_kinds(&task.review_types, &task.required);
    let reviewer =
        routing::choose_reviewer(&kinds, task.assigned_agent_id, &candidates).map(|r| r.agent_id);
    match reviewer {
        Some(r) => {
            let job = enqueue_in(c, &review_job(task.id, task.iteration, r)).await?;
            c.execute(
                "UPDATE circle.tasks SET reviewer_agent_id = $2, job_id = $3, status_reason = NULL WHERE id = $1",
                &[&task.id, &r, &job.id],
            )
            .await?;
        }
        None => {
            c.execute(
                "UPDATE circle.tasks SET reviewer_agent_id = NULL, job_id = NULL, status_reason = $2 WHERE id = $1",
                &[&task.id, &routing::NO_REVIEWER],
            )
            .await?;
        }
    }
    publish_in(
        c,
        &[events::task(
            "task.review_requested",
            circle.id,
            &circle.name,
            task.id,
            json!({"status": "in_review", "agent_id": task.assigned_agent_id, "reviewer_id": reviewer,
                   "iteration": task.iteration}),
        )],
    )
    .await?;
    Ok(reviewer)
}

/// A completed task: its event, its conflicts resolved; its author's count to apply after
/// the commit.
pub async fn completed<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
    quality: Option<f64>,
) -> Result<AgentStats, CircleError> {
    publish_in(
        c,
        &[events::task(
            "task.completed",
            circle.id,
            &circle.name,
            task.id,
            json!({"status": "completed", "agent_id": task.assigned_agent_id, "quality_score": quality,
                   "title": task.title}),
        )],
    )
    .await?;
    conflicts::resolve_for_tasks(c, circle, &[task.id], "task completed").await?;
    Ok(AgentStats {
        completed: task.assigned_agent_id.into_iter().collect(),
        reviewed: Vec::new(),
    })
}

/// Fails the task with `reason` (its slot is given back).
pub async fn fail<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
    reason: &str,
) -> Result<(), CircleError> {
    let reason: String = reason.chars().take(2000).collect();
    c.execute(
        "UPDATE circle.tasks SET status = 'failed', status_reason = $2, completed_at = now(), \
             runner = NULL, job_id = NULL, dispatched = false WHERE id = $1",
        &[&task.id, &reason],
    )
    .await?;
    publish_in(
        c,
        &[events::task(
            "task.failed",
            circle.id,
            &circle.name,
            task.id,
            json!({"status": "failed", "reason": reason, "agent_id": task.assigned_agent_id}),
        )],
    )
    .await?;
    conflicts::resolve_for_tasks(c, circle, &[task.id], "task failed").await?;
    dispatch::dispatch(c, circle.id).await?;
    Ok(())
}
