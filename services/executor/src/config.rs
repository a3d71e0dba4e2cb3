//! Executor configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::seal::MasterKey;
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;
use gathering_queue::QueueConfig;

/// Queues an executor serves by default, `name:concurrency[:batch]`.
const DEFAULT_QUEUES: &str = "default:16,agents:8,pipelines:16,scheduled:16,circles:16";

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `EXECUTOR_ADMIN_ADDR`, default `0.0.0.0:9101`.
    pub admin_addr: SocketAddr,
    /// `EXECUTOR_DB_POOL_SIZE`, default 24.
    pub pool_size: usize,
    /// `EXECUTOR_QUEUES`: `name:concurrency[:batch]`, comma-separated.
    pub queues: Vec<QueueConfig>,
    /// `EXECUTOR_LEASE_SECONDS`, default 10: how soon another executor takes over the jobs of
    /// one that died.
    pub lease: Duration,
    /// `EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS`, default 10: how long running jobs may finish on
    /// shutdown before they are released to other executors.
    pub shutdown_timeout: Duration,
    /// `LLM_GATEWAY_URL`, default `http://127.0.0.1:50052`.
    pub llm_gateway_url: String,
    /// `EVENTS_RETENTION_DAYS` (7) and `EVENTS_RETENTION_MAX_ROWS` (1,000,000): the event log
    /// is trimmed to both.
    pub events_max_age: Duration,
    pub events_max_rows: i64,
    /// `EVENTS_NOTIFY_WINDOW_MS` (default 2): pipeline progress events are written without an
    /// in-transaction `NOTIFY` and announced after commit, at most once per this window
    /// (`gathering_events::Announcer`). 0 = notify inside each transaction (serialises commits).
    pub events_notify_window: Duration,
    pub agents: gathering_agents::AgentsConfig,
    pub tools: gathering_tools::ToolsConfig,
    /// `GATHERING_MASTER_KEY`: derives the service credential the executor's gateway calls
    /// carry (required in production).
    pub master_key: MasterKey,
    pub circles: gathering_circles::CirclesConfig,
    /// `QUEUE_METRICS_INTERVAL_SECONDS` (default 5, 0 = off): how often the queue-depth gauges
    /// (`gathering_queue_*`, what autoscalers scale executors on) are refreshed.
    pub queue_metrics_interval: Option<Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let raw = config::string_or(vars, "EXECUTOR_QUEUES", DEFAULT_QUEUES);
        let queues = parse_queues(&raw).map_err(|e| ConfigError::new("EXECUTOR_QUEUES", e))?;
        let lease = Duration::from_secs(config::parse_or(vars, "EXECUTOR_LEASE_SECONDS", 10)?);
        if lease < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "EXECUTOR_LEASE_SECONDS",
                "must be at least 1",
            ));
        }
        let env = Environment::from_vars(vars)?;
        Ok(Self {
            env,
            master_key: MasterKey::from_vars(vars, env)?,
            database_url: config::database_url(vars)?,
            admin_addr: config::parse_or(vars, "EXECUTOR_ADMIN_ADDR", ([0, 0, 0, 0], 9101).into())?,
            pool_size: config::parse_or(vars, "EXECUTOR_DB_POOL_SIZE", 24)?,
            queues,
            lease,
            shutdown_timeout: Duration::from_secs(config::parse_or(
                vars,
                "EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS",
                10,
            )?),
            llm_gateway_url: config::string_or(vars, "LLM_GATEWAY_URL", "http://127.0.0.1:50052"),
            events_max_age: Duration::from_secs(
                86400 * config::parse_or::<u64>(vars, "EVENTS_RETENTION_DAYS", 7)?,
            ),
            events_max_rows: config::parse_or(vars, "EVENTS_RETENTION_MAX_ROWS", 1_000_000)?,
            events_notify_window: Duration::from_millis(config::parse_or(
                vars,
                "EVENTS_NOTIFY_WINDOW_MS",
                gathering_events::DEFAULT_NOTIFY_WINDOW.as_millis() as u64,
            )?),
            agents: gathering_agents::AgentsConfig::from_vars(vars)?,
            tools: gathering_tools::ToolsConfig::from_vars(vars)?,
            circles: gathering_circles::CirclesConfig::from_vars(vars)?,
            queue_metrics_interval: gathering_queue::depth::interval_from_vars(vars)?,
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-executor".into(),
            ..PoolOptions::default()
        }
    }
}

fn parse_queues(raw: &str) -> Result<Vec<QueueConfig>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let mut parts = item.split(':');
            let name = parts.next().unwrap_or_default().to_owned();
            gathering_queue::job::validate_queue_name(&name).map_err(|e| e.to_string())?;
            let number = |p: Option<&str>, default: usize| -> Result<usize, String> {
                match p {
                    None => Ok(default),
                    Some(n) => n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "'{item}': expected name:concurrency[:batch] with numbers 1 to 1000"
                            )
                        }),
                }
            };
            let concurrency = number(parts.next(), 8)?;
            let batch = number(parts.next(), concurrency.min(100))?;
            Ok(QueueConfig {
                name,
                concurrency,
                batch,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|q| {
            if q.is_empty() {
                Err("no queue".into())
            } else {
                Ok(q)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_parse_with_defaults() {
        let q = parse_queues("default:4, agents:2:1,pipelines").unwrap();
        assert_eq!(
            (q[0].name.as_str(), q[0].concurrency, q[0].batch),
            ("default", 4, 4)
        );
        assert_eq!((q[1].concurrency, q[1].batch), (2, 1));
        assert_eq!((q[2].concurrency, q[2].batch), (8, 8));
        assert!(parse_queues("Bad:1").is_err());
        assert!(parse_queues("x:0").is_err());
        assert!(parse_queues("").is_err());
    }
}
