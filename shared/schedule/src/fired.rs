//! The bookkeeping writes of firing schedules on `circle.scheduled_actions` (this crate owns
//! the table): the scheduler calls them inside the transaction that records the runs, so the
//! counts and due times move exactly when the runs exist.

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;

use crate::error::ScheduleError;

const ADVANCE_SQL: &str = "
UPDATE circle.scheduled_actions sa SET
    next_run_at = u.next_run_at,
    execution_count = sa.execution_count + u.fired,
    last_run_at = CASE WHEN u.fired > 0 THEN now() ELSE sa.last_run_at END,
    status = COALESCE(u.status::public.scheduled_action_status, sa.status)
FROM unnest($1::int8[], $2::timestamptz[], $3::int4[], $4::text[])
     AS u(id, next_run_at, fired, status)
WHERE sa.id = u.id";

/// Time schedules claimed in one batch: for each `ids[i]`, its next due time, how many runs
/// fired, and a new status (`expired`) or `None` to keep it.
pub async fn advance<C: GenericClient>(
    tx: &C,
    ids: &[i64],
    nexts: &[Option<DateTime<Utc>>],
    fired: &[i32],
    statuses: &[Option<&str>],
) -> Result<(), ScheduleError> {
    let stmt = tx.prepare_cached(ADVANCE_SQL).await?;
    tx.execute(&stmt, &[&ids, &nexts, &fired, &statuses])
        .await?;
    Ok(())
}

const COUNT_SQL: &str = "
UPDATE circle.scheduled_actions sa SET
    execution_count = sa.execution_count + u.fired,
    last_run_at = CASE WHEN u.fired > 0 THEN now() ELSE sa.last_run_at END,
    status = CASE WHEN u.expire THEN 'expired'::public.scheduled_action_status ELSE sa.status END
FROM unnest($1::int8[], $2::int4[], $3::bool[]) AS u(id, fired, expire)
WHERE sa.id = u.id";

/// Event schedules after a batch of events: for each `ids[i]`, how many runs fired and
/// whether it has now expired.
pub async fn count_event_runs<C: GenericClient>(
    tx: &C,
    ids: &[i64],
    fired: &[i32],
    expire: &[bool],
) -> Result<(), ScheduleError> {
    tx.execute(COUNT_SQL, &[&ids, &fired, &expire]).await?;
    Ok(())
}
