//! Lease upkeep: this worker's heartbeat, and the rescue and purge that any worker runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Shared;

/// Extends the leases of held jobs every third of the lease; jobs no longer held (cancelled,
/// or rescued after a stall) are cancelled locally.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared.config.lease / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => return,
        }
        let ids = shared.held_ids();
        if ids.is_empty() {
            continue;
        }
        match shared
            .queue
            .heartbeat(&shared.owner, shared.config.lease, &ids)
            .await
        {
            Ok(kept) => {
                if kept.len() < ids.len() {
                    let kept: std::collections::HashSet<_> = kept.into_iter().collect();
                    for id in ids.iter().filter(|id| !kept.contains(id)) {
                        // Completed meanwhile, cancelled, or lost: stop it if it still runs.
                        shared.cancel_held(*id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying next period"),
        }
    }
}

/// Rescues expired leases every `rescue_interval`, purges old final jobs every minute.
pub(super) async fn maintain(shared: Arc<Shared>, stop: CancellationToken) {
    let mut last_purge = Instant::now() - Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.rescue_interval) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = shared.queue.rescue_expired(1000).await {
            tracing::warn!(error = %e, "rescuing expired leases failed");
        }
        if last_purge.elapsed() >= Duration::from_secs(60) {
            last_purge = Instant::now();
            match shared
                .queue
                .purge_finished(
                    shared.config.retention_completed,
                    shared.config.retention_failed,
                    10_000,
                )
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "purged final jobs past retention"),
                Err(e) => tracing::warn!(error = %e, "purging final jobs failed"),
            }
        }
    }
}
