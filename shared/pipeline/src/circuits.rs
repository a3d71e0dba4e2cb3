//! Circuit breakers per node target, shared by every executor through
//! `circle.pipeline_circuits`: closed → open after `failure_threshold` failed node executions
//! (counted after retries, as A13 does) → after `recovery_timeout` one caller is let through
//! as a probe (half-open; claimed atomically, so one probe across all executors) → closed on
//! its success, open again on its failure. While open, calls fail fast with
//! "Circuit breaker OPEN for node '…'" and never reach the target.
//!
//! The table is this crate's (one owner per table): the executor asks [`acquire`] before a
//! node's call and hands its [`Record`]s to [`crate::run_state::flush`], which writes them
//! with the node's state.

use std::time::Duration;

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: call. `dirty` when failures were counted (a success resets them).
    Allowed { dirty: bool },
    /// This caller is the half-open probe.
    Probe,
    /// Fail fast.
    Open,
}

/// A change recorded with the node's state, in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Success(String),
    Failure { key: String, threshold: i32 },
}

const ACQUIRE_SQL: &str = "
WITH probe AS (
    UPDATE circle.pipeline_circuits
    SET state = 'half_open', probe_started_at = now(), updated_at = now()
    WHERE key = $1 AND (
        (state = 'open' AND opened_at <= now() - $2::int8 * interval '1 millisecond')
        OR (state = 'half_open'
            AND probe_started_at <= now() - $2::int8 * interval '1 millisecond'))
    RETURNING 1
)
SELECT (SELECT count(*) FROM probe) AS probing, c.state, c.failures
FROM (SELECT 1) AS one LEFT JOIN circle.pipeline_circuits c ON c.key = $1";

const FAILURE_SQL: &str = "
INSERT INTO circle.pipeline_circuits AS c (key, state, failures, opened_at)
VALUES ($1, CASE WHEN $2 <= 1 THEN 'open' ELSE 'closed' END, 1,
        CASE WHEN $2 <= 1 THEN now() END)
ON CONFLICT (key) DO UPDATE SET
    failures = c.failures + 1,
    state = CASE WHEN c.state = 'half_open' OR c.failures + 1 >= $2 THEN 'open' ELSE c.state END,
    opened_at = CASE WHEN c.state = 'half_open' OR (c.state = 'closed' AND c.failures + 1 >= $2)
                     THEN now() ELSE c.opened_at END,
    probe_started_at = NULL,
    updated_at = now()";

const SUCCESS_SQL: &str = "
UPDATE circle.pipeline_circuits
SET state = 'closed', failures = 0, opened_at = NULL, probe_started_at = NULL, updated_at = now()
WHERE key = $1 AND (state <> 'closed' OR failures > 0)";

/// Whether a call to the target `key` may go through, claiming the half-open probe when the
/// circuit has been open for `recovery`.
pub async fn acquire<C: GenericClient>(
    c: &C,
    key: &str,
    recovery: Duration,
) -> Result<Gate, PgError> {
    let ms = recovery.as_millis().min(i64::MAX as u128) as i64;
    let stmt = c.prepare_cached(ACQUIRE_SQL).await?;
    let row = c.query_one(&stmt, &[&key, &ms]).await?;
    let probing: i64 = row.try_get(0)?;
    let state: Option<String> = row.try_get(1)?;
    let failures: Option<i32> = row.try_get(2)?;
    Ok(match (probing, state.as_deref()) {
        (p, _) if p > 0 => Gate::Probe,
        (_, None | Some("closed")) => Gate::Allowed {
            dirty: failures.unwrap_or(0) > 0,
        },
        _ => Gate::Open,
    })
}

/// Counts a failure (opening the circuit at the threshold, or again after a failed probe) or a
/// success (closing it); in the caller's transaction.
pub async fn record<C: GenericClient>(c: &C, op: &Record) -> Result<(), PgError> {
    match op {
        Record::Success(key) => {
            let stmt = c.prepare_cached(SUCCESS_SQL).await?;
            c.execute(&stmt, &[key]).await?;
        }
        Record::Failure { key, threshold } => {
            let stmt = c.prepare_cached(FAILURE_SQL).await?;
            c.execute(&stmt, &[key, threshold]).await?;
        }
    }
    Ok(())
}
