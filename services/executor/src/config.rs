//! Executor configuration, from the environment.

use std::net::SocketAddr;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `EXECUTOR_ADMIN_ADDR`, default `0.0.0.0:9101`.
    pub admin_addr: SocketAddr,
    /// `EXECUTOR_DB_POOL_SIZE`, default 16.
    pub pool_size: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            env: Environment::from_vars(vars)?,
            database_url: config::database_url(vars)?,
            admin_addr: config::parse_or(vars, "EXECUTOR_ADMIN_ADDR", ([0, 0, 0, 0], 9101).into())?,
            pool_size: config::parse_or(vars, "EXECUTOR_DB_POOL_SIZE", 16)?,
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
