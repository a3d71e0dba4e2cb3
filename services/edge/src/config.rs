//! Edge configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::seal::MasterKey;
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `EDGE_ADDR`, default `0.0.0.0:8000`.
    pub addr: SocketAddr,
    /// `EDGE_WORKERS`: HTTP worker threads, default 2.
    pub workers: usize,
    pub pool_size: usize,
    /// `EDGE_SHUTDOWN_GRACE_MS`: how long `/health/ready` answers 503 before the server stops
    /// accepting connections, so load balancers notice first. Default 0 in development, 3000
    /// elsewhere.
    pub shutdown_grace: Duration,
    /// `GATHERING_MASTER_KEY` (required in production).
    pub master_key: MasterKey,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let env = Environment::from_vars(vars)?;
        let default_grace = if env.is_development() { 0 } else { 3000 };
        Ok(Self {
            env,
            database_url: config::database_url(vars)?,
            addr: config::parse_or(vars, "EDGE_ADDR", ([0, 0, 0, 0], 8000).into())?,
            workers: config::parse_or(vars, "EDGE_WORKERS", 2)?,
            pool_size: config::parse_or(vars, "EDGE_DB_POOL_SIZE", 16)?,
            shutdown_grace: Duration::from_millis(config::parse_or(
                vars,
                "EDGE_SHUTDOWN_GRACE_MS",
                default_grace,
            )?),
            master_key: MasterKey::from_vars(vars, env)?,
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-edge".into(),
            ..PoolOptions::default()
        }
    }
}
