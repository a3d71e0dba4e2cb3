//! A run's state as the executor moves it (the runs are this crate's table, see [`crate::store`]
//! for how they are created): started (linked to the task or pipeline run that does the work),
//! then completed, failed or back to pending for a retry. Each change is fenced on the run
//! still being open, so a late or repeated job attempt cannot overwrite a final state.

use gathering_db::GenericClient;
use serde_json::Value;

use crate::error::ScheduleError;

const START_SQL: &str = "
UPDATE circle.scheduled_action_runs
SET status = 'running', started_at = COALESCE(started_at, now()),
    background_task_id = COALESCE($2, background_task_id),
    pipeline_run_id = COALESCE($3, pipeline_run_id)
WHERE id = $1";

const COMPLETE_SQL: &str = "
UPDATE circle.scheduled_action_runs
SET status = 'completed', completed_at = now(), result = $2, result_summary = $3,
    error_message = NULL, duration_ms = $4
WHERE id = $1 AND status IN ('pending', 'running')
RETURNING scheduled_action_id";

const FAIL_SQL: &str = "
UPDATE circle.scheduled_action_runs
SET status = 'failed', completed_at = now(), error_message = $2, result = $3, duration_ms = $4
WHERE id = $1 AND status IN ('pending', 'running')
RETURNING scheduled_action_id";

const RETRY_SQL: &str = "
UPDATE circle.scheduled_action_runs
SET status = 'pending', retry_count = retry_count + 1, error_message = $2, result = $3
WHERE id = $1 AND status IN ('pending', 'running')
RETURNING scheduled_action_id, retry_count";

/// Marks a run running, linking the background task or pipeline run doing its work.
pub async fn started<C: GenericClient>(
    tx: &C,
    run_id: i64,
    task_id: Option<i64>,
    pipeline_run_id: Option<i64>,
) -> Result<(), ScheduleError> {
    tx.execute(START_SQL, &[&run_id, &task_id, &pipeline_run_id])
        .await?;
    Ok(())
}

/// Completes an open run; `false` when it was already final.
pub async fn completed<C: GenericClient>(
    tx: &C,
    run_id: i64,
    result: &Value,
    summary: &str,
    duration_ms: i32,
) -> Result<bool, ScheduleError> {
    let row = tx
        .query_opt(COMPLETE_SQL, &[&run_id, result, &summary, &duration_ms])
        .await?;
    Ok(row.is_some())
}

/// Fails an open run; `false` when it was already final.
pub async fn failed<C: GenericClient>(
    tx: &C,
    run_id: i64,
    message: &str,
    data: &Value,
    duration_ms: i32,
) -> Result<bool, ScheduleError> {
    let row = tx
        .query_opt(FAIL_SQL, &[&run_id, &message, data, &duration_ms])
        .await?;
    Ok(row.is_some())
}

/// Sends an open run back to pending for another attempt; returns the attempt number, or
/// `None` when it was already final.
pub async fn retrying<C: GenericClient>(
    tx: &C,
    run_id: i64,
    message: &str,
    data: &Value,
) -> Result<Option<i32>, ScheduleError> {
    match tx.query_opt(RETRY_SQL, &[&run_id, &message, data]).await? {
        Some(row) => Ok(Some(row.try_get(1)?)),
        None => Ok(None),
    }
}
