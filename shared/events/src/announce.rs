//! Wake-ups for events written without an in-transaction `NOTIFY` ([`publish_quiet_in`]).
//!
//! Why: PostgreSQL serialises the commits of transactions that `NOTIFY` (a database-wide lock
//! held from pre-commit through the commit's WAL flush), so a hot path whose every
//! transaction notifies is capped near the disk's flush rate (~740 commits/s on the reference
//! machine, against ~5,800 without). Writers on such a path publish quietly and, once their
//! transaction committed, call [`Announcer::announce`] with the newest event id: at most one
//! `NOTIFY events, '<newest id>'` per window is sent from a tiny transaction of its own that
//! does not wait for the WAL flush (it carries nothing durable: the rows are already
//! committed). The first announcement of a window is sent at once (an idle system sees no
//! added latency); later ones within the window fold into one trailing notification at its
//! end carrying the newest id, so every committed event is followed by a notification at
//! most one window later. Listeners read rows, never payloads, so nothing is lost; a lost
//! notification still only delays delivery until their poll.
//!
//! [`publish_quiet_in`]: crate::publish_quiet_in

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_db::Pool;

use crate::CHANNEL;

const NOTIFY_SQL: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2::int8::text)";

#[derive(Default)]
struct State {
    /// Newest id announced and not notified yet (0: none).
    pending: i64,
    last_sent: Option<Instant>,
    trailing: bool,
}

struct Inner {
    pool: Pool,
    window: Duration,
    state: Mutex<State>,
}

/// Coalesced `NOTIFY events` after commit. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    inner: Arc<Inner>,
}

impl Announcer {
    /// `window` zero means writers keep notifying inside their own transactions
    /// ([`Announcer::inline`]); `announce` then does nothing.
    pub fn new(pool: Pool, window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                window,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// True when writers should publish with an in-transaction `NOTIFY` (`publish_in`).
    pub fn inline(&self) -> bool {
        self.inner.window.is_zero()
    }

    /// Call after the transaction that wrote events up to id `newest` committed.
    pub fn announce(&self, newest: i64) {
        if self.inline() || newest <= 0 {
            return;
        }
        let now = Instant::now();
        let send_now = {
            let mut s = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            s.pending = s.pending.max(newest);
            if s.trailing {
                // The scheduled trailing notification will carry it.
                None
            } else if s
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= self.inner.window)
            {
                s.last_sent = Some(now);
                Some(std::mem::take(&mut s.pending))
            } else {
                s.trailing = true;
                let at = s.last_sent.unwrap_or(now) + self.inner.window;
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let id = {
                        let mut s = this.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                        s.trailing = false;
                        s.last_sent = Some(Instant::now());
                        std::mem::take(&mut s.pending)
                    };
                    this.send(id).await;
                });
                None
            }
        };
        if let Some(id) = send_now {
            let this = self.clone();
            tokio::spawn(async move { this.send(id).await });
        }
    }

    async fn send(&self, id: i64) {
        if id <= 0 {
            return;
        }
        let result = match self.inner.pool.get().await {
            Ok(client) => client
                .execute(NOTIFY_SQL, &[&CHANNEL, &id])
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            // Listeners poll as a backstop: delivery is delayed, not lost.
            tracing::warn!(error = %e, id, "event notification failed");
            metrics::counter!("events_notify_failed_total").increment(1);
        }
    }
}
