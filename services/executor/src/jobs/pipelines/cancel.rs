//! Stopping a run wherever it executes. Cancelling a run (the API, or a parent's timeout)
//! commits its new status and `NOTIFY pipeline_cancel, '<run id>'`; every executor listens and
//! cancels the token of the run it is executing, which drops the in-flight node calls at once.
//! A notification is only a wake-up: on (re)connection and every few seconds the watcher also
//! re-reads the status of the runs it executes, so a lost one delays a cancel, never loses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_db::listen::ListenerEvent;
use gathering_pipeline::store::CANCEL_CHANNEL;
use tokio_util::sync::CancellationToken;

/// How often watched runs are re-read without a notification.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Runs {
    next: u64,
    by_run: HashMap<i64, (u64, CancellationToken)>,
}

/// The runs this executor executes, by id.
pub struct CancelWatch {
    runs: Arc<Mutex<Runs>>,
    stop: Shutdown,
}

/// A run being watched; stops watching when dropped.
pub struct Watched {
    pub token: CancellationToken,
    runs: Arc<Mutex<Runs>>,
    run_id: i64,
    seq: u64,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs
            .by_run
            .get(&self.run_id)
            .is_some_and(|(s, _)| *s == self.seq)
        {
            runs.by_run.remove(&self.run_id);
        }
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

impl CancelWatch {
    /// Starts listening (in the background, retrying until it connects).
    pub fn start(pool: Pool, database_url: String) -> CancelWatch {
        let runs = Arc::new(Mutex::new(Runs::default()));
        let stop = Shutdown::new();
        tokio::spawn(listen(pool, database_url, runs.clone(), stop.clone()));
        CancelWatch { runs, stop }
    }

    pub fn watch(&self, run_id: i64) -> Watched {
        let token = CancellationToken::new();
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.next += 1;
        let seq = runs.next;
        runs.by_run.insert(run_id, (seq, token.clone()));
        Watched {
            token,
            runs: self.runs.clone(),
            run_id,
            seq,
        }
    }
}

fn cancel(runs: &Mutex<Runs>, run_id: i64) {
    let runs = runs.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, token)) = runs.by_run.get(&run_id) {
        tracing::info!(run_id, "pipeline run cancelled: stopping it");
        token.cancel();
    }
}

/// Cancels the watched runs that ended according to the database (a run is watched just
/// before it is claimed, so `pending` is not an end).
async fn reconcile(pool: &Pool, runs: &Mutex<Runs>) {
    let ids: Vec<i64> = {
        let r = runs.lock().unwrap_or_else(|p| p.into_inner());
        r.by_run.keys().copied().collect()
    };
    if ids.is_empty() {
        return;
    }
    let result = async {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT id FROM circle.pipeline_runs WHERE id = ANY($1) \
                 AND status IN ('completed', 'failed', 'cancelled', 'timeout')",
                &[&ids],
            )
            .await?;
        let stopped = rows
            .iter()
            .map(|r| r.try_get::<_, i64>(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, gathering_db::DbError>(stopped)
    }
    .await;
    match result {
        Ok(stopped) => stopped.into_iter().for_each(|id| cancel(runs, id)),
        Err(e) => tracing::warn!(error = %e, "re-reading pipeline run statuses failed"),
    }
}

async fn listen(pool: Pool, url: String, runs: Arc<Mutex<Runs>>, stop: Shutdown) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_triggered() {
        let mut listener =
            match gathering_db::Listener::start(&url, &[CANCEL_CHANNEL], stop.child()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "pipeline cancel listener cannot connect; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.wait() => return,
                    }
                    reconcile(&pool, &runs).await;
                    continue;
                }
            };
        reconcile(&pool, &runs).await;
        loop {
            tokio::select! {
                event = listener.recv() => match event {
                    Some(ListenerEvent::Notification(n)) => {
                        if let Ok(id) = n.payload.parse::<i64>() {
                            cancel(&runs, id);
                        }
                    }
                    Some(ListenerEvent::Reconnected) => reconcile(&pool, &runs).await,
                    None => break,
                },
                _ = tick.tick() => reconcile(&pool, &runs).await,
                _ = stop.wait() => return,
            }
        }
    }
}
