//! What the scheduler's loops share.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use gathering_db::Pool;
use gathering_schedule::Limits;

/// Counters of one instance (admin `/health` details, tests, benchmarks).
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs fired (jobs enqueued).
    pub fired: AtomicU64,
    /// Runs recorded as skipped (previous run still running).
    pub skipped: AtomicU64,
    /// Claim transactions that locked at least one schedule.
    pub claims: AtomicU64,
    /// Runs fired by event schedules.
    pub event_runs: AtomicU64,
}

pub struct Ctx {
    pub pool: Pool,
    pub database_url: String,
    pub batch: i64,
    pub limits: Limits,
    pub max_sleep: Duration,
    pub event_poll: Duration,
    pub stats: Arc<Stats>,
}
