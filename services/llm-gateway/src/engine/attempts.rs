//! The two loops every call runs: over the model and its fallbacks ([`Gateway::first_answer`]),
//! and over the attempts on one model ([`Gateway::with_retries`]). Chat, streams and embeddings
//! all go through both, so retry, fallback, breaker and usage rules are written once.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gathering_core::backoff::Backoff;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::Gateway;
use crate::error::GatewayError;
use crate::registry::Target;
use crate::usage::guard::{CallGuard, Tally};

impl Gateway {
    /// Tries `targets` in order until one answers: an error that allows a fallback moves on to
    /// the next model, any other ends the call. A failed call is recorded in `guard` here; a
    /// successful one is the caller's to record (it knows the usage).
    pub(super) async fn first_answer<'t, T, Fut>(
        targets: &'t [Target],
        guard: &mut CallGuard,
        tally: &Tally,
        mut call: impl FnMut(&'t Target) -> Fut,
    ) -> Result<(&'t Target, T), GatewayError>
    where
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let mut last = GatewayError::Internal("no model to try".into());
        for target in targets {
            let tried = tally.tried.fetch_add(1, Ordering::Relaxed) + 1;
            guard.target(target);
            match call(target).await {
                Ok(value) => return Ok((target, value)),
                Err(e) => {
                    let go_on = e.allows_fallback();
                    if go_on && (tried as usize) < targets.len() {
                        tracing::info!(model = %target.label, error = %e, "falling back to the next model");
                    }
                    last = e;
                    if !go_on {
                        break;
                    }
                }
            }
        }
        guard.finish_err(&last, tally);
        Err(last)
    }

    /// Runs `attempt` until it succeeds, a non-retryable error occurs, the retries are spent
    /// or the deadline would pass. Each attempt holds a concurrency slot (released while
    /// waiting to retry) and reports to the circuit breaker.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        target: &Target,
        deadline: Instant,
        tally: &Tally,
        per_attempt: Duration,
        mut attempt: F,
    ) -> Result<(T, OwnedSemaphorePermit, Duration), GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let rel = &self.inner.rel;
        let label = target.label.as_str();
        let provider = &*target.provider.endpoint.provider;
        let mut retry = 0u32;
        loop {
            self.inner.breakers.admit(label)?;
            let permit = self.inner.limits.acquire(provider, deadline).await?;
            let now = Instant::now();
            if now >= deadline {
                return Err(GatewayError::Timeout(label.to_owned()));
            }
            tally.attempts.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result =
                match tokio::time::timeout(per_attempt.min(deadline - now), attempt()).await {
                    Ok(r) => r,
                    Err(_) => Err(GatewayError::Timeout(label.to_owned())),
                };
            let error = match result {
                Ok(value) => {
                    self.inner.breakers.success(label);
                    return Ok((value, permit, started.elapsed()));
                }
                Err(e) => e,
            };
            drop(permit);
            if error.counts_for_breaker() {
                self.inner.breakers.failure(label);
            }
            if !error.retryable() || retry >= rel.max_retries {
                return Err(error);
            }
            let wait = match error.retry_after() {
                Some(after) if after > rel.max_retry_after => return Err(error),
                Some(after) => after,
                None => Backoff {
                    base: rel.retry_base,
                    cap: rel.retry_max,
                    // Wide jitter: callers that failed together must not retry together.
                    jitter: 1.0,
                }
                .delay(retry as i32 + 1),
            };
            if Instant::now() + wait >= deadline {
                return Err(error);
            }
            tracing::debug!(model = label, error = %error, wait_ms = wait.as_millis() as u64, "retrying");
            metrics::counter!("llm_gateway_retries_total").increment(1);
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}
