//! Records completions in batches: one statement for everything finished meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::job::JobId;

pub(super) async fn run(shared: Arc<Shared>, mut done: mpsc::Receiver<(JobId, i32)>) {
    let max_batch = shared.config.completion_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = done.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < max_batch {
            match done.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        let accepted = loop {
            match shared.queue.complete_many(&shared.owner, &batch).await {
                Ok(accepted) => break Some(accepted),
                Err(e) if delay < Duration::from_secs(3) => {
                    tracing::warn!(error = %e, "recording completions failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    // The jobs keep their lease until it expires, then run again: at least once.
                    tracing::error!(error = %e, count = batch.len(), "completions not recorded");
                    break None;
                }
            }
        };
        if let Some(accepted) = accepted {
            let refused = batch.len() - accepted.len();
            shared
                .stats
                .completed
                .fetch_add(accepted.len() as u64, Ordering::Relaxed);
            metrics::counter!("queue_jobs_completed_total").increment(accepted.len() as u64);
            if refused > 0 {
                shared
                    .stats
                    .refused
                    .fetch_add(refused as u64, Ordering::Relaxed);
                tracing::warn!(refused, "completions refused: leases lost to other workers");
            }
        }
        let ids: Vec<JobId> = batch.iter().map(|b| b.0).collect();
        shared.unhold(&ids);
    }
}
