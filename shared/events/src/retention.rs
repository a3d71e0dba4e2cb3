//! Bounded retention: events older than an age, and beyond a count, are deleted in batches.

use std::time::Duration;

use gathering_db::Pool;

use crate::EventError;

const BY_AGE_SQL: &str = "
DELETE FROM events.log WHERE id IN (
    SELECT id FROM events.log
    WHERE created_at < now() - $1::int8 * interval '1 millisecond'
    LIMIT $2)";

const BY_COUNT_SQL: &str = "
DELETE FROM events.log WHERE id IN (
    SELECT id FROM events.log
    WHERE id <= (SELECT id FROM events.log ORDER BY id DESC OFFSET $1 LIMIT 1)
    ORDER BY id
    LIMIT $2)";

/// Deletes events older than `max_age` and all but the newest `max_rows`, at most `batch` of
/// each per call. Returns how many were deleted.
pub async fn purge(
    pool: &Pool,
    max_age: Duration,
    max_rows: i64,
    batch: i64,
) -> Result<u64, EventError> {
    let client = pool.get().await?;
    let age_ms = max_age.as_millis().min(i64::MAX as u128) as i64;
    let by_age = client.execute(BY_AGE_SQL, &[&age_ms, &batch]).await?;
    let by_count = client.execute(BY_COUNT_SQL, &[&max_rows, &batch]).await?;
    Ok(by_age + by_count)
}
