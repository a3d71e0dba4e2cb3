//! A run's state as the executor moves it: claiming the run, writing its node rows (with the
//! breaker records and events of the same changes), parking it for an approval and ending it.
//! The runs are this crate's tables (see [`crate::store`] for how they are created), so the
//! executor's runtime calls these instead of holding SQL of its own.
//!
//! Every write after the claim is fenced on the run's `runner` token and `status = 'running'`
//! in the same statement (the run row is locked by it for the rest of the transaction), so a
//! cancelled run, or a run another executor took over, refuses a stale executor's writes; node
//! rows only move out of pending/running.

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;
use gathering_events::{Announcer, NewEvent, publish_in, publish_quiet_in};
use serde_json::Value;

use crate::PipelineError;
use crate::circuits::{self, Record};
use crate::model::Definition;

const CLAIM_SQL: &str = "
UPDATE circle.pipeline_runs r SET
    status = 'running', runner = $2, started_at = COALESCE(r.started_at, now())
FROM (SELECT status FROM circle.pipeline_runs WHERE id = $1) AS old
WHERE r.id = $1 AND r.status IN ('pending', 'running', 'waiting_approval')
RETURNING r.pipeline_id, r.definition, r.trigger_data, r.started_at, r.timeout_seconds, r.depth,
          r.retry_of, old.status AS previous, now() AS db_now";

/// Runs created without a definition (by the scheduler) take their pipeline's now.
const SNAPSHOT_SQL: &str = "
UPDATE circle.pipeline_runs r SET
    definition = jsonb_build_object('nodes', p.nodes, 'edges', p.edges, 'settings',
        jsonb_build_object('timeout_seconds', p.timeout_seconds,
                           'max_retries_per_node', p.max_retries_per_node,
                           'retry_backoff_base', p.retry_backoff_base,
                           'retry_backoff_max', p.retry_backoff_max)),
    timeout_seconds = COALESCE(r.timeout_seconds, p.timeout_seconds)
FROM circle.pipelines p
WHERE r.id = $1 AND p.id = r.pipeline_id
RETURNING r.definition, r.timeout_seconds";

const COUNT_START_SQL: &str =
    "UPDATE circle.pipelines SET run_count = run_count + 1, last_run = now() WHERE id = $1";

const FLUSH_SQL: &str = "
WITH fence AS (
    UPDATE circle.pipeline_runs SET current_node = COALESCE($3, current_node)
    WHERE id = $1 AND runner = $2 AND status = 'running'
    RETURNING id
), upd AS (
    UPDATE circle.pipeline_node_runs n SET
        status = u.status, attempt = u.attempt, retry_count = GREATEST(u.attempt - 1, 0),
        wake_at = u.wake_at, input_data = u.input, output_data = u.output,
        error_message = u.error, error_kind = u.kind, started_at = u.started,
        completed_at = u.completed, duration_ms = u.duration, child_run_id = u.child
    FROM fence, unnest($4::text[], $5::text[], $6::int4[], $7::timestamptz[], $8::jsonb[],
                       $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[],
                       $13::timestamptz[], $14::int4[], $15::int8[])
         AS u(node_id, status, attempt, wake_at, input, output, error, kind, started, completed,
              duration, child)
    WHERE n.run_id = fence.id AND n.node_id = u.node_id AND n.status IN ('pending', 'running')
    RETURNING 1
)
SELECT (SELECT count(*) FROM fence) AS held, (SELECT count(*) FROM upd) AS updated";

const FINISH_SQL: &str = "
WITH fence AS (
    UPDATE circle.pipeline_runs SET
        status = $3, completed_at = now(), error_message = $4, logs = $5, current_node = NULL,
        runner = NULL,
        duration_seconds = COALESCE(extract(epoch FROM now() - started_at)::float8, 0)
    WHERE id = $1 AND runner = $2 AND status = 'running'
    RETURNING pipeline_id
), counted AS (
    UPDATE circle.pipelines p SET
        run_count = run_count + $6::bool::int,
        last_run = CASE WHEN $6::bool THEN now() ELSE last_run END,
        success_count = success_count + ($3 = 'completed')::int,
        error_count = error_count + ($3 IN ('failed', 'timeout'))::int
    FROM fence WHERE p.id = fence.pipeline_id
)
SELECT count(*) AS held FROM fence";

const PARK_SQL: &str = "UPDATE circle.pipeline_runs SET status = 'waiting_approval' \
    WHERE id = $1 AND runner = $2 AND status = 'running'";

/// A claimed run.
pub struct Claimed {
    pub pipeline_id: i64,
    pub definition: Value,
    pub trigger_data: Value,
    pub started_at: DateTime<Utc>,
    pub timeout_seconds: i32,
    pub depth: i32,
    /// The run was pending: this is its first start.
    pub first: bool,
    /// The run retries this one (its node rows hold the reused outputs).
    pub retry_of: Option<i64>,
    pub db_now: DateTime<Utc>,
}

/// Takes a pending or running run for `runner`; `None` when it is final (or gone).
pub async fn claim<C: GenericClient>(
    c: &C,
    run_id: i64,
    runner: &str,
) -> Result<Option<Claimed>, PgError> {
    let Some(row) = c.query_opt(CLAIM_SQL, &[&run_id, &runner]).await? else {
        return Ok(None);
    };
    let mut definition: Option<Value> = row.try_get("definition")?;
    let mut timeout: Option<i32> = row.try_get("timeout_seconds")?;
    if definition.is_none()
        && let Some(s) = c.query_opt(SNAPSHOT_SQL, &[&run_id]).await?
    {
        definition = s.try_get(0)?;
        timeout = s.try_get(1)?;
    }
    let previous: String = row.try_get("previous")?;
    Ok(Some(Claimed {
        pipeline_id: row.try_get("pipeline_id")?,
        definition: definition.unwrap_or(Value::Null),
        trigger_data: row.try_get("trigger_data")?,
        started_at: row.try_get("started_at")?,
        timeout_seconds: timeout.unwrap_or(3600).max(1),
        depth: row.try_get("depth")?,
        first: previous == "pending",
        retry_of: row.try_get("retry_of")?,
        db_now: row.try_get("db_now")?,
    }))
}

/// A run's first start: its pipeline's run count and last run. Last in its transaction: every
/// run of the pipeline updates this row, so it is locked only until the commit.
pub async fn count_start<C: GenericClient>(c: &C, pipeline_id: i64) -> Result<(), PgError> {
    c.execute(COUNT_START_SQL, &[&pipeline_id]).await?;
    Ok(())
}

/// A node row as written.
#[derive(Debug, Clone)]
pub struct NodeWrite {
    pub node_id: String,
    pub status: &'static str,
    pub attempt: i32,
    pub wake_at: Option<DateTime<Utc>>,
    pub input: Value,
    pub output: Value,
    pub error: Option<String>,
    pub kind: Option<&'static str>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub duration_ms: i32,
    pub child: Option<i64>,
}

/// The first write of a run's first start also creates its node rows (runs the scheduler
/// created have none) and counts the run.
pub struct FirstStart<'a> {
    pub pipeline_id: i64,
    pub definition: &'a Definition,
}

/// Writes node rows, breaker records and events in the caller's transaction; `None` when the
/// run is no longer ours (cancelled, finished, or taken over), else the newest event id
/// written (0: none). Unless the announcer is inline, the events carry no `NOTIFY` (it would
/// serialise this commit with every other notifying one): the caller announces the id once
/// the transaction committed.
#[allow(clippy::too_many_arguments)]
pub async fn flush<C: GenericClient>(
    c: &C,
    run_id: i64,
    runner: &str,
    current_node: Option<&str>,
    nodes: &[NodeWrite],
    breakers: &[Record],
    events: &[NewEvent],
    first: Option<&FirstStart<'_>>,
    announcer: &Announcer,
) -> Result<Option<i64>, PipelineError> {
    if let Some(f) = first {
        crate::store::insert_node_rows(c, run_id, f.definition).await?;
    }
    let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    let statuses: Vec<&str> = nodes.iter().map(|n| n.status).collect();
    let attempts: Vec<i32> = nodes.iter().map(|n| n.attempt).collect();
    let wakes: Vec<Option<DateTime<Utc>>> = nodes.iter().map(|n| n.wake_at).collect();
    let inputs: Vec<&Value> = nodes.iter().map(|n| &n.input).collect();
    let outputs: Vec<&Value> = nodes.iter().map(|n| &n.output).collect();
    let errors: Vec<Option<&str>> = nodes.iter().map(|n| n.error.as_deref()).collect();
    let kinds: Vec<Option<&str>> = nodes.iter().map(|n| n.kind).collect();
    let started: Vec<Option<DateTime<Utc>>> = nodes.iter().map(|n| n.started).collect();
    let completed: Vec<Option<DateTime<Utc>>> = nodes.iter().map(|n| n.completed).collect();
    let durations: Vec<i32> = nodes.iter().map(|n| n.duration_ms).collect();
    let children: Vec<Option<i64>> = nodes.iter().map(|n| n.child).collect();
    let stmt = c.prepare_cached(FLUSH_SQL).await?;
    let row = c
        .query_one(
            &stmt,
            &[
                &run_id,
                &runner,
                &current_node,
                &ids,
                &statuses,
                &attempts,
                &wakes,
                &inputs,
                &outputs,
                &errors,
                &kinds,
                &started,
                &completed,
                &durations,
                &children,
            ],
        )
        .await?;
    let held: i64 = row.try_get(0)?;
    if held == 0 {
        return Ok(None);
    }
    for op in breakers {
        circuits::record(c, op).await?;
    }
    let ids = if announcer.inline() {
        publish_in(c, events).await?
    } else {
        publish_quiet_in(c, events).await?
    };
    if let Some(f) = first {
        count_start(c, f.pipeline_id).await?;
    }
    Ok(Some(ids.into_iter().max().unwrap_or(0)))
}

/// Ends the run (after its last flush, in the same transaction) and counts it (`first`: also
/// as started); false when it was not ours.
pub async fn finish<C: GenericClient>(
    c: &C,
    run_id: i64,
    runner: &str,
    status: &str,
    error: Option<&str>,
    logs: &Value,
    first: bool,
) -> Result<bool, PgError> {
    let stmt = c.prepare_cached(FINISH_SQL).await?;
    let row = c
        .query_one(&stmt, &[&run_id, &runner, &status, &error, logs, &first])
        .await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

/// Marks the run `waiting_approval` (only people or timers are awaited), locking its row for
/// the rest of the transaction; false when it was not ours.
pub async fn park<C: GenericClient>(c: &C, run_id: i64, runner: &str) -> Result<bool, PgError> {
    Ok(c.execute(PARK_SQL, &[&run_id, &runner]).await? > 0)
}
