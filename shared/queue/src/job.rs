//! Jobs: what is enqueued, what a worker claims, and what is stored.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::QueueError;

pub type JobId = i64;

/// Queue used when none is given.
pub const DEFAULT_QUEUE: &str = "default";

/// A job to enqueue, validated by `validate` before it reaches the database.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i16,
    /// Earliest start; `None` means now (database time).
    pub run_at: Option<DateTime<Utc>>,
    /// Delay from now (database time); ignored when `run_at` is set.
    pub delay: Option<Duration>,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            queue: DEFAULT_QUEUE.into(),
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            delay: None,
            max_attempts: 20,
            unique_key: None,
        }
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }

    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn validate(&self) -> Result<(), QueueError> {
        validate_queue_name(&self.queue)?;
        if self.kind.is_empty() || self.kind.len() > 100 {
            return Err(QueueError::Invalid(
                "kind must be 1 to 100 characters".into(),
            ));
        }
        if self.max_attempts < 1 {
            return Err(QueueError::Invalid(
                "max_attempts must be at least 1".into(),
            ));
        }
        if self
            .unique_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 500)
        {
            return Err(QueueError::Invalid(
                "unique_key must be 1 to 500 characters".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn delay_ms(&self) -> i64 {
        self.delay
            .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
            .unwrap_or(0)
    }
}

/// Queue names become `NOTIFY` channel names (`queue_<name>`): `[a-z0-9_]`, 1 to 48 characters.
pub fn validate_queue_name(queue: &str) -> Result<(), QueueError> {
    let ok = !queue.is_empty()
        && queue.len() <= 48
        && queue
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(QueueError::Invalid(format!(
            "queue name '{queue}' must match [a-z0-9_]{{1,48}}"
        )))
    }
}

/// The `NOTIFY` channel of a queue.
pub fn channel(queue: &str) -> String {
    format!("queue_{queue}")
}

/// Result of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    /// False when a live job with the same unique key already existed; `id` is that job.
    pub inserted: bool,
}

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i16,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Available,
    Running,
    Completed,
    Failed,
    Discarded,
    Cancelled,
}

impl JobState {
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "available" => JobState::Available,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "discarded" => JobState::Discarded,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Discarded | JobState::Cancelled
        )
    }
}

/// A stored job, for inspection.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub state: JobState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub errors: Value,
    pub run_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
