//! One reader of the log per process, fanning events out to local subscribers (WebSocket
//! connections, executors waiting on a circle) through a bounded broadcast channel. A
//! subscriber that falls behind is told how many batches it missed (`Lagged`) instead of
//! growing memory; it can resume from its last event id with `read_after`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_db::listen::ListenerEvent;
use tokio::sync::broadcast;

use crate::cursor::Cursor;
use crate::event::Event;
use crate::read::{Filter, read_after, tail};
use crate::{CHANNEL, EventError};

/// Events delivered together, in log order.
pub type HubBatch = Arc<Vec<Event>>;

const READ_LIMIT: i64 = 1000;
/// Backstop poll when no notification arrives.
const POLL: Duration = Duration::from_secs(1);
/// Re-check period while a notified event is not readable yet (an older transaction runs).
const PENDING_RECHECK: Duration = Duration::from_millis(5);

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<HubBatch>,
    cursor: Arc<Mutex<Cursor>>,
    delivered: Arc<AtomicI64>,
}

impl Hub {
    /// Starts reading new events (from the current end of the log).
    pub async fn start(
        pool: Pool,
        database_url: &str,
        capacity: usize,
        shutdown: Shutdown,
    ) -> Result<Hub, EventError> {
        let listener =
            gathering_db::Listener::start(database_url, &[CHANNEL], shutdown.clone()).await?;
        let start = tail(&pool.get().await?).await?;
        // At least two: a subscriber must be able to hold the batch it is sending and the next.
        let (tx, _) = broadcast::channel(capacity.max(2));
        let hub = Hub {
            tx,
            cursor: Arc::new(Mutex::new(start)),
            delivered: Arc::new(AtomicI64::new(0)),
        };
        tokio::spawn(run(hub.clone(), pool, listener, shutdown));
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubBatch> {
        self.tx.subscribe()
    }

    /// Position of the last event broadcast.
    pub fn cursor(&self) -> Cursor {
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events broadcast since start.
    pub fn delivered(&self) -> i64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

async fn run(hub: Hub, pool: Pool, mut listener: gathering_db::Listener, shutdown: Shutdown) {
    let mut newest_notified: i64 = 0;
    let mut newest_seen: i64 = 0;
    let mut pending_since: Option<Instant> = None;
    loop {
        // Read everything that is final.
        loop {
            let cursor = hub.cursor();
            let batch = match pool.get().await {
                Ok(client) => read_after(&client, cursor, &Filter::default(), READ_LIMIT).await,
                Err(e) => Err(e.into()),
            };
            match batch {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    let full = events.len() as i64 == READ_LIMIT;
                    if let Some(last) = events.last() {
                        *hub.cursor.lock().unwrap_or_else(|p| p.into_inner()) = last.cursor();
                    }
                    newest_seen = newest_seen.max(events.iter().map(|e| e.id).max().unwrap_or(0));
                    hub.delivered
                        .fetch_add(events.len() as i64, Ordering::Relaxed);
                    // No subscribers is fine: nothing to deliver to.
                    let _ = hub.tx.send(Arc::new(events));
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the event log failed");
                    break;
                }
            }
        }
        // A notified event not readable yet waits on an older transaction: re-check soon.
        let wait = if newest_notified > newest_seen {
            let since = *pending_since.get_or_insert_with(Instant::now);
            if since.elapsed() < Duration::from_secs(10) {
                PENDING_RECHECK
            } else {
                POLL
            }
        } else {
            pending_since = None;
            POLL
        };
        tokio::select! {
            event = listener.recv() => match event {
                Some(ListenerEvent::Notification(n)) => {
                    if let Ok(id) = n.payload.parse::<i64>() {
                        newest_notified = newest_notified.max(id);
                    }
                    // Drain a burst of notifications: one read serves them all.
                    while let Some(ListenerEvent::Notification(n)) = listener.try_recv() {
                        if let Ok(id) = n.payload.parse::<i64>() {
                            newest_notified = newest_notified.max(id);
                        }
                    }
                }
                Some(ListenerEvent::Reconnected) => {}
                None => return,
            },
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
    }
}
