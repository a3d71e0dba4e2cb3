//! A durable job queue on PostgreSQL (`queue.jobs`), and the worker runtime executors use.
//!
//! # Guarantees
//!
//! - **At-least-once execution.** A job runs until one attempt completes. A worker that dies
//!   holding a job loses its lease when `lease_expires_at` passes; any instance's rescuer then
//!   makes the job available again (within the lease plus one rescue interval: seconds, not
//!   the hour River and Oban wait by default).
//! - **Exactly one recorded completion.** Completion, failure and snooze are fenced on
//!   `(id, lease_owner, attempt, state = 'running')`: a worker whose lease was lost (a zombie)
//!   cannot overwrite the outcome of the attempt that replaced it.
//! - **Ordering.** Jobs of a queue are claimed by `priority` (lower first), then `run_at`,
//!   then id. Concurrency means they may finish in another order.
//! - **Unique jobs.** At most one live (available, running or failed-awaiting-retry) job per
//!   `unique_key`; enqueueing a duplicate returns the existing job.
//! - **No lost wake-ups.** `NOTIFY queue_<name>` wakes idle workers within milliseconds; a
//!   lost notification only delays a job until the next poll.
//!
//! # States
//!
//! `available` → (claim) → `running` → `completed`; or on error → `failed` (waiting for its
//! retry at `run_at`, with exponential back-off and jitter) → claimed again; or, after
//! `max_attempts`, → `discarded` (kept with every error). `cancelled` is final too. A snooze
//! puts a running job back to `available` at a later time without counting an attempt (used
//! for durable timers).

pub use gathering_core::backoff;
pub mod depth;
pub mod error;
pub mod job;
pub mod notify;
pub mod store;
pub mod worker;

pub use backoff::Backoff;
pub use depth::QueueDepth;
pub use error::QueueError;
pub use job::{Enqueued, Job, JobId, JobRecord, JobState, NewJob};
pub use store::{FailOutcome, Queue, enqueue_in, enqueue_many_in, wake_in};
pub use worker::{
    HandlerResult, JobContext, JobError, KindOptions, Outcome, QueueConfig, Registry, Stats,
    Worker, WorkerConfig, WorkerHandle,
};
