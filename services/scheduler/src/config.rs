//! Scheduler configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;
use gathering_schedule::Limits;

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `SCHEDULER_ADMIN_ADDR`, default `0.0.0.0:9102`.
    pub admin_addr: SocketAddr,
    /// `SCHEDULER_DB_POOL_SIZE`, default 16.
    pub pool_size: usize,
    /// `SCHEDULER_BATCH` (1 to 5000, default 500): schedules claimed per transaction.
    pub batch: i64,
    /// `SCHEDULER_MISFIRE_GRACE_SECONDS` (default 60): how late a due time may be and still
    /// run as scheduled rather than go through its missed-run policy.
    pub grace: Duration,
    /// `SCHEDULER_CATCH_UP_MAX` (default 100): most runs a `catch_up` schedule fires at once.
    pub catch_up_max: usize,
    /// `SCHEDULER_MAX_SLEEP_MS` (default 10000): longest sleep without a wake-up (a backstop:
    /// schedule changes wake schedulers through `NOTIFY`).
    pub max_sleep: Duration,
    /// `SCHEDULER_EVENT_POLL_MS` (default 1000): backstop poll of the event log for event
    /// schedules (new events wake it through `NOTIFY`).
    pub event_poll: Duration,
    /// `QUEUE_METRICS_INTERVAL_SECONDS` (default 5, 0 = off): how often the queue-depth gauges
    /// (`gathering_queue_*`) are refreshed. Schedulers export them too: they always run, while
    /// executors may be scaled to zero.
    pub queue_metrics_interval: Option<Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let batch: i64 = config::parse_or(vars, "SCHEDULER_BATCH", 500)?;
        if !(1..=5000).contains(&batch) {
            return Err(ConfigError::new("SCHEDULER_BATCH", "must be 1 to 5000"));
        }
        let catch_up_max: usize = config::parse_or(vars, "SCHEDULER_CATCH_UP_MAX", 100)?;
        if !(1..=10_000).contains(&catch_up_max) {
            return Err(ConfigError::new(
                "SCHEDULER_CATCH_UP_MAX",
                "must be 1 to 10000",
            ));
        }
        let max_sleep_ms: u64 = config::parse_or(vars, "SCHEDULER_MAX_SLEEP_MS", 10_000)?;
        let event_poll_ms: u64 = config::parse_or(vars, "SCHEDULER_EVENT_POLL_MS", 1000)?;
        if max_sleep_ms < 10 || event_poll_ms < 10 {
            return Err(ConfigError::new(
                "SCHEDULER_MAX_SLEEP_MS",
                "sleep and poll periods must be at least 10 ms",
            ));
        }
        Ok(Self {
            env: Environment::from_vars(vars)?,
            database_url: config::database_url(vars)?,
            admin_addr: config::parse_or(
                vars,
                "SCHEDULER_ADMIN_ADDR",
                ([0, 0, 0, 0], 9102).into(),
            )?,
            pool_size: config::parse_or(vars, "SCHEDULER_DB_POOL_SIZE", 16)?,
            batch,
            grace: Duration::from_secs(config::parse_or(
                vars,
                "SCHEDULER_MISFIRE_GRACE_SECONDS",
                60,
            )?),
            catch_up_max,
            max_sleep: Duration::from_millis(max_sleep_ms),
            event_poll: Duration::from_millis(event_poll_ms),
            queue_metrics_interval: gathering_queue::depth::interval_from_vars(vars)?,
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-scheduler".into(),
            ..PoolOptions::default()
        }
    }

    /// The missed-run limits of this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            grace: chrono::TimeDelta::from_std(self.grace)
                .unwrap_or_else(|_| chrono::TimeDelta::seconds(60)),
            catch_up_max: self.catch_up_max,
            scan_max: 1000,
        }
    }
}
