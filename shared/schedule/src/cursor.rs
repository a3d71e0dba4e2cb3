//! The scheduler's positions in the event log (`circle.scheduler_cursors`), owned here with the
//! other schedule tables. A cursor is read under its row lock (`FOR UPDATE SKIP LOCKED`), so
//! one instance at a time follows the log from it; it moves in the transaction that handled
//! the events, so a crash re-reads them and never skips one.

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error;
use gathering_events::Cursor;

/// The cursor event schedules follow (created by the migration).
pub const EVENT_SCHEDULES: &str = "event_schedules";

const LOCK_SQL: &str = "
SELECT xid, event_id FROM circle.scheduler_cursors WHERE name = $1 FOR UPDATE SKIP LOCKED";
const MOVE_SQL: &str = "
UPDATE circle.scheduler_cursors SET xid = $2, event_id = $3, updated_at = now() WHERE name = $1";

/// Locks cursor `name` until the transaction ends and returns its position; `None` when
/// another instance holds it (this one skips its turn).
pub async fn lock<C: GenericClient>(tx: &C, name: &str) -> Result<Option<Cursor>, Error> {
    let Some(row) = tx.query_opt(LOCK_SQL, &[&name]).await? else {
        return Ok(None);
    };
    Ok(Some(Cursor {
        xid: row.try_get(0)?,
        id: row.try_get(1)?,
    }))
}

/// Moves the locked cursor `name` to `to` (in the transaction that handled the events up to it).
pub async fn advance<C: GenericClient>(tx: &C, name: &str, to: Cursor) -> Result<(), Error> {
    tx.execute(MOVE_SQL, &[&name, &to.xid, &to.id]).await?;
    Ok(())
}
