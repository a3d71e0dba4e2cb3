//! A runner: takes buffered jobs one at a time and runs their handler.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::context::{JobContext, JobError, Outcome};
use super::registry::Registration;
use super::{Lane, Shared};
use crate::job::{Job, JobId};
use crate::store::FailOutcome;

/// How long a handler may keep running after it was cancelled before it is aborted.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn run(shared: Arc<Shared>, lane: Arc<Lane>, done: mpsc::Sender<(JobId, i32)>) {
    if lane.self_fed(&shared.config) {
        return self_fed(shared, lane).await;
    }
    loop {
        let job = loop {
            if shared.stop_taking.is_cancelled() {
                return;
            }
            let job = lane
                .buffer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            if let Some(job) = job {
                lane.room.notify_one();
                break job;
            }
            tokio::select! {
                _ = lane.job_ready.notified() => {}
                _ = shared.stop_taking.cancelled() => return,
            }
        };
        run_one(&shared, job, Completion::Batched(&done)).await;
    }
}

/// Single-row mode: this runner claims one job at a time for itself, and records each
/// completion in the statement that claims its next job (one round trip and one commit per
/// job instead of two). Idle, it waits for a wake-up: a notification, a runner that found
/// work (it passes the wake-up on, so a burst spreads over idle runners), or the poll period.
async fn self_fed(shared: Arc<Shared>, lane: Arc<Lane>) {
    let mut finished: Option<(JobId, i32)> = None;
    let mut woken = true;
    let mut error_backoff = Duration::from_millis(100);
    loop {
        if shared.stop_taking.is_cancelled() {
            if let Some((id, attempt)) = finished.take() {
                complete_inline(&shared, id, attempt).await;
            }
            return;
        }
        let (name, lease) = (lane.config.name.as_str(), shared.config.lease);
        let claimed = match finished.take() {
            Some((id, attempt)) => {
                let r = shared
                    .queue
                    .complete_and_claim(&shared.owner, id, attempt, name, lease)
                    .await;
                match &r {
                    Ok((true, _)) => {
                        shared.stats.completed.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("queue_jobs_completed_total").increment(1);
                    }
                    Ok((false, _)) => refused(&shared, id),
                    Err(e) => {
                        tracing::warn!(error = %e, id, "completion not recorded; the lease will expire")
                    }
                }
                shared.unhold(&[id]);
                r.map(|(_, jobs)| jobs)
            }
            None => shared.queue.claim(name, &shared.owner, lease, 1).await,
        };
        match claimed {
            Ok(jobs) if !jobs.is_empty() => {
                error_backoff = Duration::from_millis(100);
                shared
                    .stats
                    .claimed
                    .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                for job in &jobs {
                    shared.hold(job);
                }
                if std::mem::take(&mut woken) {
                    // Jobs were waiting: wake another idle runner to take some too.
                    lane.wake.notify_one();
                }
                for job in jobs {
                    let mut slot = None;
                    run_one(&shared, job, Completion::Deferred(&mut slot)).await;
                    if let Some(done) = slot
                        && let Some(prev) = finished.replace(done)
                    {
                        // More than one job claimed: record the earlier completion now.
                        complete_inline(&shared, prev.0, prev.1).await;
                    }
                }
            }
            Ok(_) => {
                woken = true;
                tokio::select! {
                    _ = lane.wake.notified() => {}
                    _ = tokio::time::sleep(shared.config.poll_interval) => {}
                    _ = shared.stop_taking.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, queue = lane.config.name, "claiming jobs failed");
                woken = true;
                tokio::select! {
                    _ = tokio::time::sleep(error_backoff) => {}
                    _ = shared.stop_taking.cancelled() => {}
                }
                error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Where a completed attempt is recorded.
enum Completion<'a> {
    /// Sent to the completer, which records completions in batches.
    Batched(&'a mpsc::Sender<(JobId, i32)>),
    /// Left to the caller (single-row mode: recorded with the next claim).
    Deferred(&'a mut Option<(JobId, i32)>),
}

/// One statement per job, from this runner: completions proceed in parallel.
async fn complete_inline(shared: &Shared, id: JobId, attempt: i32) {
    match shared.queue.complete(&shared.owner, id, attempt).await {
        Ok(true) => {
            shared.stats.completed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("queue_jobs_completed_total").increment(1);
        }
        Ok(false) => refused(shared, id),
        Err(e) => {
            tracing::warn!(error = %e, id, "completion not recorded; the lease will expire")
        }
    }
    shared.unhold(&[id]);
}

/// What happened to one attempt.
enum Ended {
    Returned(Result<Outcome, JobError>),
    Panicked(String),
    TimedOut(Duration),
    /// Cancelled from outside (job cancelled, lease lost, shutdown): nothing to record.
    Cancelled,
}

async fn run_one(shared: &Shared, job: Job, completion: Completion<'_>) {
    let Some(cancel) = shared.held_token(job.id) else {
        return; // lost while buffered
    };
    if cancel.is_cancelled() {
        shared.unhold(&[job.id]);
        return;
    }
    let Some(registration) = shared.registry.get(&job.kind).cloned() else {
        let msg = format!("no handler registered for job kind '{}'", job.kind);
        let delay = crate::Backoff::default().delay(job.attempt);
        record_failure(shared, &job, &msg, Some(delay)).await;
        return;
    };
    let ended = execute(shared, &job, &registration, cancel).await;
    record(shared, &job, &registration, ended, completion).await;
}

/// Runs the job's handler on its own task until it returns, panics, times out or is cancelled
/// (lease lost, job cancelled, shutdown); a stopped handler gets [`CANCEL_GRACE`] to return.
async fn execute(
    shared: &Shared,
    job: &Job,
    registration: &Registration,
    cancel: CancellationToken,
) -> Ended {
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempt);
    let ctx = JobContext {
        job: job.clone(),
        cancel: cancel.clone(),
        queue: shared.queue.clone(),
    };
    let mut handle = tokio::spawn(tracing::Instrument::instrument(
        (registration.handler)(ctx),
        span,
    ));
    let timeout = registration.options.timeout.unwrap_or(Duration::MAX);
    // No timer at all without a timeout: registering and removing one per job costs the
    // timer wheel's lock, measurable at tens of thousands of jobs per second.
    let expired = async {
        match registration.options.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        joined = &mut handle => match joined {
            Ok(r) => Ended::Returned(r),
            Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
            Err(_) => Ended::Cancelled,
        },
        _ = expired => {
            cancel.cancel();
            if tokio::time::timeout(CANCEL_GRACE, &mut handle).await.is_err() {
                handle.abort();
            }
            Ended::TimedOut(timeout)
        }
        _ = cancel.cancelled() => {
            match tokio::time::timeout(CANCEL_GRACE, &mut handle).await {
                Ok(Ok(r)) if !matches!(r, Err(JobError::Retry(_))) => Ended::Returned(r),
                Ok(_) => Ended::Cancelled,
                Err(_) => { handle.abort(); Ended::Cancelled }
            }
        }
    }
}

/// Records how the job ended: completion (inline, deferred to the next claim, or batched),
/// snooze, failure with the kind's back-off, or nothing when it was cancelled.
async fn record(
    shared: &Shared,
    job: &Job,
    registration: &Registration,
    ended: Ended,
    completion: Completion<'_>,
) {
    let (id, attempt) = (job.id, job.attempt);
    match ended {
        Ended::Returned(Ok(Outcome::Completed)) => match completion {
            Completion::Deferred(slot) => *slot = Some((id, attempt)),
            Completion::Batched(_) if shared.config.completion_batch <= 1 => {
                complete_inline(shared, id, attempt).await
            }
            Completion::Batched(done) => {
                // Recorded in a batch by the completer, which also un-holds the job.
                if done.send((id, attempt)).await.is_err() {
                    shared.unhold(&[id]);
                }
            }
        },
        Ended::Returned(Ok(Outcome::Snooze { delay, payload })) => {
            match shared
                .queue
                .snooze(&shared.owner, id, attempt, delay, payload.as_ref())
                .await
            {
                Ok(true) => {}
                Ok(false) => refused(shared, id),
                Err(e) => {
                    tracing::warn!(error = %e, id, "snooze not recorded; the lease will expire")
                }
            }
            shared.unhold(&[id]);
        }
        Ended::Returned(Err(JobError::Retry(msg))) => {
            let delay = registration.options.backoff.delay(attempt);
            record_failure(shared, job, &msg, Some(delay)).await;
        }
        Ended::Returned(Err(JobError::Discard(msg))) => {
            record_failure(shared, job, &msg, None).await
        }
        Ended::Panicked(msg) => {
            let delay = registration.options.backoff.delay(attempt);
            let msg = format!("handler panicked: {msg}");
            record_failure(shared, job, &msg, Some(delay)).await;
        }
        Ended::TimedOut(t) => {
            let delay = registration.options.backoff.delay(attempt);
            record_failure(shared, job, &format!("timed out after {t:?}"), Some(delay)).await;
        }
        Ended::Cancelled => {
            tracing::info!(
                id,
                kind = job.kind,
                "job stopped: cancelled, lease lost or shutting down"
            );
            // During shutdown the job is released by the worker; otherwise it is cancelled
            // or owned by another worker now.
            if !shared.stop_taking.is_cancelled() {
                shared.unhold(&[id]);
            }
        }
    }
}

async fn record_failure(shared: &Shared, job: &Job, msg: &str, retry_in: Option<Duration>) {
    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
    match shared
        .queue
        .fail(&shared.owner, job.id, job.attempt, msg, retry_in)
        .await
    {
        Ok(FailOutcome::Retrying) => {
            tracing::warn!(
                id = job.id,
                kind = job.kind,
                attempt = job.attempt,
                error = msg,
                "job failed; will retry"
            )
        }
        Ok(FailOutcome::Discarded) => {
            tracing::error!(
                id = job.id,
                kind = job.kind,
                attempt = job.attempt,
                error = msg,
                "job discarded"
            )
        }
        Ok(FailOutcome::Refused) => refused(shared, job.id),
        Err(e) => {
            tracing::warn!(error = %e, id = job.id, "failure not recorded; the lease will expire")
        }
    }
    metrics::counter!("queue_jobs_failed_total", "kind" => job.kind.clone()).increment(1);
    shared.unhold(&[job.id]);
}

fn refused(shared: &Shared, id: JobId) {
    shared.stats.refused.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        id,
        "outcome refused: this worker no longer holds the job's lease"
    );
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
