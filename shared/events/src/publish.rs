//! Writing events: inside a caller's transaction, or through a `Publisher` that also batches
//! and de-duplicates high-frequency kinds.

use std::collections::HashSet;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::{GenericClient, Pool};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::EventError;
use crate::announce::Announcer;
use crate::event::NewEvent;

/// One statement: the rows, then one `NOTIFY events` carrying the newest id.
const INSERT_SQL: &str = "
WITH ins AS (
    INSERT INTO events.log (kind, topics, payload, source)
    SELECT t.kind, ARRAY(SELECT jsonb_array_elements_text(t.topics)), t.payload, t.source
    FROM unnest($1::text[], $2::jsonb[], $3::jsonb[], $4::text[])
         WITH ORDINALITY AS t(kind, topics, payload, source, ord)
    ORDER BY t.ord
    RETURNING id
), note AS (
    SELECT pg_notify('events', max(id)::text) FROM ins
)
SELECT id FROM ins, (SELECT count(*) FROM note) AS n ORDER BY id";

/// The same rows without the `NOTIFY` (see [`crate::Announcer`]).
const INSERT_QUIET_SQL: &str = "
INSERT INTO events.log (kind, topics, payload, source)
SELECT t.kind, ARRAY(SELECT jsonb_array_elements_text(t.topics)), t.payload, t.source
FROM unnest($1::text[], $2::jsonb[], $3::jsonb[], $4::text[])
     WITH ORDINALITY AS t(kind, topics, payload, source, ord)
ORDER BY t.ord
RETURNING id";

/// Publishes `events` with the caller's client or transaction; subscribers see them once the
/// transaction commits. Returns their ids in order.
pub async fn publish_in<C: GenericClient>(
    client: &C,
    events: &[NewEvent],
) -> Result<Vec<i64>, EventError> {
    insert(client, events, INSERT_SQL).await
}

/// Like [`publish_in`] but without the `NOTIFY`, which would serialise this transaction's
/// commit with every other notifying one: after the commit, pass the newest id returned to
/// [`crate::Announcer::announce`], or listeners only find the events at their next poll.
pub async fn publish_quiet_in<C: GenericClient>(
    client: &C,
    events: &[NewEvent],
) -> Result<Vec<i64>, EventError> {
    insert(client, events, INSERT_QUIET_SQL).await
}

async fn insert<C: GenericClient>(
    client: &C,
    events: &[NewEvent],
    sql: &str,
) -> Result<Vec<i64>, EventError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    for e in events {
        e.validate()?;
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let topics: Vec<Value> = events
        .iter()
        .map(|e| Value::from(e.topics.clone()))
        .collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
    let sources: Vec<Option<&str>> = events.iter().map(|e| e.source.as_deref()).collect();
    let stmt = client.prepare_cached(sql).await?;
    let rows = client
        .query(&stmt, &[&kinds, &topics, &payloads, &sources])
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// One notification per 2 ms at most: ~500/s, each a tiny asynchronous commit.
pub const DEFAULT_NOTIFY_WINDOW: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Coalesced events are written once per window; identical ones within it are dropped.
    pub window: Duration,
    /// Coalesced events waiting at most; beyond it new ones are dropped (and counted).
    pub max_pending: usize,
    /// Window of [`crate::Announcer`] notifications (zero: writers notify inside their own
    /// transactions, the behaviour before the announcer).
    pub notify_window: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(100),
            max_pending: 10_000,
            notify_window: DEFAULT_NOTIFY_WINDOW,
        }
    }
}

/// Publishes events on a pool. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    pool: Pool,
    coalesced: mpsc::Sender<NewEvent>,
    announcer: Announcer,
}

impl Publisher {
    /// Starts the coalescer; it flushes what it holds and stops on `shutdown`.
    pub fn start(pool: Pool, options: PublisherOptions, shutdown: Shutdown) -> Publisher {
        let (tx, rx) = mpsc::channel(options.max_pending.max(1));
        tokio::spawn(coalesce(pool.clone(), rx, options.window, shutdown));
        Publisher {
            announcer: Announcer::new(pool.clone(), options.notify_window),
            pool,
            coalesced: tx,
        }
    }

    /// Wake-ups for events published with [`publish_quiet_in`].
    pub fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    /// Publishes now, in one statement of its own.
    pub async fn publish(&self, events: &[NewEvent]) -> Result<Vec<i64>, EventError> {
        let client = self.pool.get().await?;
        publish_in(&client, events).await
    }

    /// Queues a high-frequency event (progress, typing, metrics) for the next window. Returns
    /// false when it was dropped because too many are waiting.
    pub fn publish_coalesced(&self, event: NewEvent) -> bool {
        if let Err(e) = event.validate() {
            tracing::warn!(error = %e, "coalesced event refused");
            return false;
        }
        match self.coalesced.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                metrics::counter!("events_coalesced_dropped_total").increment(1);
                false
            }
        }
    }
}

async fn coalesce(
    pool: Pool,
    mut rx: mpsc::Receiver<NewEvent>,
    window: Duration,
    shutdown: Shutdown,
) {
    let mut batch: Vec<NewEvent> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = shutdown.wait() => None,
        };
        let Some(first) = first else { break };
        push_unique(&mut batch, &mut seen, first);
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => push_unique(&mut batch, &mut seen, e),
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        flush(&pool, &mut batch, &mut seen).await;
    }
    while let Ok(e) = rx.try_recv() {
        push_unique(&mut batch, &mut seen, e);
    }
    flush(&pool, &mut batch, &mut seen).await;
}

fn push_unique(batch: &mut Vec<NewEvent>, seen: &mut HashSet<String>, event: NewEvent) {
    let key = format!(
        "{}\u{1f}{:?}\u{1f}{}\u{1f}{:?}",
        event.kind, event.topics, event.payload, event.source
    );
    if seen.insert(key) {
        batch.push(event);
    } else {
        metrics::counter!("events_deduplicated_total").increment(1);
    }
}

async fn flush(pool: &Pool, batch: &mut Vec<NewEvent>, seen: &mut HashSet<String>) {
    if batch.is_empty() {
        return;
    }
    let result = async {
        let client = pool.get().await?;
        publish_in(&client, batch).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, count = batch.len(), "coalesced events lost");
    }
    batch.clear();
    seen.clear();
}
