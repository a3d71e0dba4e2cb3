//! Records completions in batches: one statement for everything finished meanwhile. A few
//! batches may be in flight at once, so their commits (each waits for the WAL flush) overlap
//! instead of queueing behind one another.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Shared;
use crate::job::JobId;

/// Completion statements in flight at most.
const IN_FLIGHT: usize = 4;

pub(super) async fn run(shared: Arc<Shared>, mut done: mpsc::Receiver<(JobId, i32)>) {
    let max_batch = shared.config.completion_batch.max(1);
    let mut inflight = JoinSet::new();
    loop {
        // With every slot busy, wait for one to free before taking more.
        if inflight.len() >= IN_FLIGHT {
            inflight.join_next().await;
            continue;
        }
        let first = tokio::select! {
            item = done.recv() => item,
            Some(_) = inflight.join_next(), if !inflight.is_empty() => continue,
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(max_batch.min(1024));
        batch.push(first);
        while batch.len() < max_batch {
            match done.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        inflight.spawn(record(shared.clone(), batch));
    }
    while inflight.join_next().await.is_some() {}
}

async fn record(shared: Arc<Shared>, batch: Vec<(JobId, i32)>) {
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
