//! A concurrency limit per provider: at most `LLM_MAX_CONCURRENCY_PER_PROVIDER` upstream
//! requests in flight to one provider; callers beyond wait (up to `LLM_QUEUE_TIMEOUT_MS` or
//! their deadline) and then fail with `Overloaded` rather than pile up without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::GatewayError;

pub struct Limits {
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_provider: usize,
    queue_timeout: Duration,
}

impl Limits {
    pub fn new(per_provider: usize, queue_timeout: Duration) -> Limits {
        Limits {
            semaphores: Mutex::new(HashMap::new()),
            per_provider: per_provider.max(1),
            queue_timeout,
        }
    }

    fn semaphore(&self, provider: &str) -> Arc<Semaphore> {
        let mut map = self.semaphores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(provider) {
            return s.clone();
        }
        let s = Arc::new(Semaphore::new(self.per_provider));
        map.insert(provider.to_owned(), s.clone());
        s
    }

    /// A slot for one upstream request to `provider`, held until the permit is dropped.
    pub async fn acquire(
        &self,
        provider: &str,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, GatewayError> {
        let semaphore = self.semaphore(provider);
        if let Ok(p) = semaphore.clone().try_acquire_owned() {
            return Ok(p);
        }
        let until = deadline.min(Instant::now() + self.queue_timeout);
        match tokio::time::timeout_at(until, semaphore.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(GatewayError::Overloaded(provider.to_owned())),
        }
    }

    /// Requests in flight to `provider` now.
    pub fn in_flight(&self, provider: &str) -> usize {
        self.per_provider - self.semaphore(provider).available_permits()
    }
}
