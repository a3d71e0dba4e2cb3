//! Reading the log in `(xid, id)` order, below the oldest running transaction.

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};

use crate::EventError;
use crate::cursor::Cursor;
use crate::event::Event;

/// Which events a reader wants; empty lists mean everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<String>,
    /// Subscriptions, matched with the delivery rule of `Event::matches`.
    pub topics: Vec<String>,
}

const READ_SQL: &str = "
SELECT id, xid::text::int8 AS xid, kind, topics, payload, source, created_at
FROM events.log
WHERE (xid, id) > ($1::int8::text::xid8, $2::int8)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())
  AND (cardinality($3::text[]) = 0 OR kind = ANY($3))
  AND (cardinality($4::text[]) = 0 OR cardinality(topics) = 0
       OR EXISTS (SELECT 1 FROM unnest(topics) AS t
                  WHERE t = ANY($4) OR split_part(t, ':', 1) = ANY($4)))
ORDER BY xid, id
LIMIT $5";

const TAIL_SQL: &str = "
SELECT xid::text::int8 AS xid, id FROM events.log
WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid DESC, id DESC
LIMIT 1";

const CURSOR_OF_SQL: &str = "SELECT xid::text::int8 AS xid, id FROM events.log WHERE id = $1";

fn event_from_row(r: &Row) -> Result<Event, PgError> {
    Ok(Event {
        id: r.try_get("id")?,
        xid: r.try_get("xid")?,
        kind: r.try_get("kind")?,
        topics: r.try_get("topics")?,
        payload: r.try_get("payload")?,
        source: r.try_get("source")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Up to `limit` final events after `after` that pass `filter`, in log order.
pub async fn read_after<C: GenericClient>(
    client: &C,
    after: Cursor,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Event>, EventError> {
    let stmt = client.prepare_cached(READ_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[&after.xid, &after.id, &filter.kinds, &filter.topics, &limit],
        )
        .await?;
    Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
}

/// The position after every final event: where a new reader that wants only new events starts.
pub async fn tail<C: GenericClient>(client: &C) -> Result<Cursor, EventError> {
    let row = client.query_opt(TAIL_SQL, &[]).await?;
    let Some(r) = row else {
        return Ok(Cursor::START);
    };
    Ok(Cursor {
        xid: r.try_get(0)?,
        id: r.try_get(1)?,
    })
}

/// The position of event `id` (a client's `last_event_id`), if it is still retained.
pub async fn cursor_of<C: GenericClient>(
    client: &C,
    id: i64,
) -> Result<Option<Cursor>, EventError> {
    let row = client.query_opt(CURSOR_OF_SQL, &[&id]).await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Cursor {
        xid: r.try_get(0)?,
        id: r.try_get(1)?,
    }))
}
