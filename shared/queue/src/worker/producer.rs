//! A queue's producer: keeps the local buffer filled by claiming jobs, with several claims in
//! flight when the claim batch is small (so single-row claims from many runners commit
//! together instead of one after another).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{Lane, Shared};
use crate::QueueError;
use crate::job::Job;

pub(super) async fn run(shared: Arc<Shared>, lane: Arc<Lane>) {
    if lane.self_fed(&shared.config) {
        return; // the runners claim for themselves
    }
    let batch = lane.config.batch;
    // Enough buffered to feed every runner, plus one batch ahead.
    let target = batch + lane.config.concurrency;
    let max_inflight = lane.config.concurrency.div_ceil(batch).max(1);
    let mut inflight: JoinSet<(usize, u64, Result<Vec<Job>, QueueError>)> = JoinSet::new();
    // Wake-ups seen so far. A claim that comes back short marks the queue drained only if no
    // wake-up arrived after it was issued: a job notified meanwhile may have been missed by it.
    let mut wakes: u64 = 0;
    let mut pending = 0usize;
    // The queue looked empty: claim again only after a notification or the poll period.
    let mut drained = false;
    let mut error_backoff = Duration::from_millis(100);
    let mut poll = tokio::time::interval(shared.config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if shared.stop_taking.is_cancelled() {
            // Claims in flight finish: their jobs go to the buffer, which shutdown releases.
            while let Some(done) = inflight.join_next().await {
                if let Ok((_, _, Ok(jobs))) = done {
                    buffer_jobs(&shared, &lane, jobs);
                }
            }
            return;
        }
        // Claim only when at least half a batch is missing: topping up one job at a time would
        // turn batched claims into single-row ones.
        let min_claim = (batch / 2).max(1);
        while !drained
            && inflight.len() < max_inflight
            && lane.buffered() + pending + min_claim <= target
        {
            let want = batch.min(target - lane.buffered() - pending);
            pending += want;
            let (shared, lane) = (shared.clone(), lane.clone());
            let issued_at = wakes;
            inflight.spawn(async move {
                let r = shared
                    .queue
                    .claim(
                        &lane.config.name,
                        &shared.owner,
                        shared.config.lease,
                        want as i64,
                    )
                    .await;
                (want, issued_at, r)
            });
        }
        tokio::select! {
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                let Ok((want, issued_at, result)) = done else { continue };
                pending -= want;
                match result {
                    Ok(jobs) => {
                        error_backoff = Duration::from_millis(100);
                        let got = jobs.len();
                        if got < want && issued_at == wakes {
                            drained = true;
                        }
                        buffer_jobs(&shared, &lane, jobs);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, queue = lane.config.name, "claiming jobs failed");
                        drained = true;
                        tokio::select! {
                            _ = tokio::time::sleep(error_backoff) => {}
                            _ = shared.stop_taking.cancelled() => {}
                        }
                        error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            _ = lane.room.notified() => {}
            _ = lane.wake.notified() => { drained = false; wakes += 1; }
            _ = poll.tick() => { drained = false; wakes += 1; }
            _ = shared.stop_taking.cancelled() => {}
        }
    }
}

/// Holds claimed jobs and hands them to the runners.
fn buffer_jobs(shared: &Shared, lane: &Lane, jobs: Vec<Job>) {
    let got = jobs.len();
    if got == 0 {
        return;
    }
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
