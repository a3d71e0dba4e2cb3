//! What a handler receives and returns.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::job::Job;
use crate::store::Queue;

/// A claimed job, handed to its handler.
pub struct JobContext {
    pub job: Job,
    /// Cancelled when the job is cancelled, its lease is lost, it timed out, or shutdown's
    /// deadline passed. Long handlers check it and return early.
    pub cancel: CancellationToken,
    /// The queue, to enqueue follow-up jobs.
    pub queue: Queue,
}

/// A handler's successful outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// Run again after `delay` without counting an attempt, optionally with a new payload
    /// (a durable timer: the job waits in the table, not in a worker).
    Snooze {
        delay: Duration,
        payload: Option<Value>,
    },
}

/// A handler's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Retry with back-off while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// Do not retry: the job is discarded now.
    #[error("{0}")]
    Discard(String),
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry(e.to_string())
    }

    pub fn discard(e: impl std::fmt::Display) -> Self {
        JobError::Discard(e.to_string())
    }
}

pub type HandlerResult = Result<Outcome, JobError>;
