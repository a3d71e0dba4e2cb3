//! Rate limiting of queue wake-ups.
//!
//! A `NOTIFY` costs a global lock at commit, so notifying once per enqueued job would cap
//! throughput. Enqueues through `Queue` notify at most once per window per queue: the first
//! enqueue of a window notifies inline (delivered at its commit, so pickup at idle takes
//! milliseconds); later ones within the window skip it and instead make sure one trailing
//! notification is sent after the window, once they have committed. Workers that are busy
//! do not need wake-ups at all: they keep claiming until the queue is empty.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gathering_db::Pool;

use crate::job::channel;

#[derive(Default)]
struct QueueState {
    last_sent: Option<Instant>,
    trailing_scheduled: bool,
}

pub struct NotifyLimiter {
    pool: Pool,
    window: Duration,
    state: Mutex<HashMap<String, QueueState>>,
}

impl NotifyLimiter {
    pub fn new(pool: Pool, window: Duration) -> Self {
        Self {
            pool,
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// True when the caller should notify inline for all of `queues` (and it is recorded as
    /// sent); false when each was notified within the window.
    pub fn take(&self, queues: &[&str]) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let open = queues.iter().any(|q| {
            state
                .get(*q)
                .and_then(|s| s.last_sent)
                .is_none_or(|t| now.duration_since(t) >= self.window)
        });
        if open {
            for q in queues {
                state.entry((*q).to_owned()).or_default().last_sent = Some(now);
            }
        }
        open
    }

    /// Called after a skipped notification's transaction committed: one notification per
    /// queue will follow at the end of the current window.
    pub fn schedule_trailing(self: &std::sync::Arc<Self>, queues: &[&str]) {
        let mut due = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for q in queues {
                let s = state.entry((*q).to_owned()).or_default();
                if !s.trailing_scheduled {
                    s.trailing_scheduled = true;
                    let at = s
                        .last_sent
                        .map(|t| t + self.window)
                        .unwrap_or_else(Instant::now);
                    due.push(((*q).to_owned(), at));
                }
            }
        }
        for (queue, at) in due {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                {
                    let mut state = this.state.lock().unwrap_or_else(|p| p.into_inner());
                    let s = state.entry(queue.clone()).or_default();
                    s.trailing_scheduled = false;
                    s.last_sent = Some(Instant::now());
                }
                let result = match this.pool.get().await {
                    Ok(client) => client
                        .execute("SELECT pg_notify($1, '')", &[&channel(&queue)])
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = result {
                    // Workers poll as a backstop: the job is delayed, not lost.
                    tracing::warn!(error = %e, queue, "trailing queue notification failed");
                }
            });
        }
    }
}
