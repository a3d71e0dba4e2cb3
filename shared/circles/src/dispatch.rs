//! Admission: a running circle has `max_concurrent_tasks` work slots. A task takes a slot when
//! its work job is enqueued (`dispatched`) and gives it back when the work ends (in review,
//! completed, failed or sent back). Every change that may free a slot or add waiting work
//! calls [`dispatch`] at the end of its transaction, which takes the circle's dispatch lock (a
//! transaction-scoped advisory lock) before counting, so slots are never over-committed by
//! concurrent edges or executors and nothing polls: waiting tasks are enqueued by the
//! transaction that frees their slot, most urgent (lowest priority) first. The lock's holder
//! waits for no row (waiting tasks are taken with `SKIP LOCKED`), so it cannot deadlock.

use gathering_db::GenericClient;
use gathering_queue::{NewJob, enqueue_many_in};
use serde_json::json;

use crate::{CircleError, QUEUE};

/// Class of the per-circle dispatch lock ("CIRC"); the second key is the circle id.
const DISPATCH_LOCK: i32 = 0x4349_5243;

/// The work job of one iteration of a task.
pub const WORK_KIND: &str = "circle_task.work";

pub fn work_job(task_id: i64, iteration: i32) -> NewJob {
    NewJob::new(
        WORK_KIND,
        json!({"task_id": task_id, "iteration": iteration}),
    )
    .queue(QUEUE)
    .unique_key(format!("circle_task:{task_id}:{iteration}"))
    .max_attempts(10)
}

const ADMIT_SQL: &str = "
WITH c AS (
    SELECT id, max_concurrent_tasks FROM circle.circles
    WHERE id = $1 AND is_active AND status = 'running'
), busy AS (
    SELECT count(*) AS n FROM circle.tasks t
    WHERE t.circle_id = $1 AND t.dispatched AND t.status IN ('assigned', 'in_progress')
)
SELECT t.id, t.iteration FROM circle.tasks t
WHERE t.circle_id = (SELECT id FROM c) AND t.status = 'assigned' AND NOT t.dispatched
      AND t.assigned_agent_id IS NOT NULL
ORDER BY t.priority, t.id
LIMIT GREATEST((SELECT max_concurrent_tasks FROM c) - (SELECT n FROM busy), 0)
FOR NO KEY UPDATE OF t SKIP LOCKED";

/// One write per admitted task (a second write of a row in one transaction would re-check
/// its foreign keys).
const SET_JOBS_SQL: &str = "
UPDATE circle.tasks t SET dispatched = true, job_id = j.job
FROM unnest($1::int8[], $2::int8[]) AS j(task, job)
WHERE t.id = j.task";

/// Enqueues the work of as many waiting tasks as the circle has free slots; returns how many.
/// Does nothing while the circle is stopped or deleted.
pub async fn dispatch<C: GenericClient>(c: &C, circle_id: i64) -> Result<usize, CircleError> {
    // The lock first, in its own statement: the count below must see every slot taken by
    // transactions that held it before (a statement's snapshot predates its lock waits).
    c.execute(
        "SELECT pg_advisory_xact_lock($1, ($2::int8 % 2147483647)::int4)",
        &[&DISPATCH_LOCK, &circle_id],
    )
    .await?;
    let rows = c.query(ADMIT_SQL, &[&circle_id]).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tasks = Vec::with_capacity(rows.len());
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let iteration: i32 = r.try_get("iteration")?;
        tasks.push(id);
        jobs.push(work_job(id, iteration));
    }
    let enqueued = enqueue_many_in(c, &jobs).await?;
    let ids: Vec<i64> = enqueued.iter().map(|e| e.id).collect();
    c.execute(SET_JOBS_SQL, &[&tasks, &ids]).await?;
    Ok(tasks.len())
}
