//! A queue's producer: claims jobs into the local buffer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Lane, Shared};

pub(super) async fn run(shared: Arc<Shared>, lane: Arc<Lane>) {
    let batch = lane.config.batch;
    let mut error_backoff = Duration::from_millis(100);
    loop {
        if shared.stop_taking.is_cancelled() {
            return;
        }
        let buffered = lane.buffered();
        if buffered <= lane.low_water() {
            let want = batch - buffered;
            match shared
                .queue
                .claim(
                    &lane.config.name,
                    &shared.owner,
                    shared.config.lease,
                    want as i64,
                )
                .await
            {
                Ok(jobs) => {
                    error_backoff = Duration::from_millis(100);
                    let got = jobs.len();
                    if got > 0 {
                        shared
                            .stats
                            .claimed
                            .fetch_add(got as u64, Ordering::Relaxed);
                        let mut buffer = lane.buffer.lock().unwrap_or_else(|p| p.into_inner());
                        for job in jobs {
                            shared.hold(&job);
                            buffer.push_back(job);
                        }
                        drop(buffer);
                        for _ in 0..got {
                            lane.job_ready.notify_one();
                        }
                    }
                    if got == want {
                        // The queue may hold more: check again right away.
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, queue = lane.config.name, "claiming jobs failed");
                    tokio::select! {
                        _ = tokio::time::sleep(error_backoff) => {}
                        _ = shared.stop_taking.cancelled() => return,
                    }
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = lane.wake.notified() => {}
            _ = tokio::time::sleep(shared.config.poll_interval) => {}
            _ = shared.stop_taking.cancelled() => return,
        }
    }
}
