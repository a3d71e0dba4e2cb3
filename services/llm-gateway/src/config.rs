//! Gateway configuration, from the environment.

use std::net::SocketAddr;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `LLM_GATEWAY_ADDR`, default `0.0.0.0:50052` (gRPC).
    pub grpc_addr: SocketAddr,
    /// `LLM_GATEWAY_HTTP_ADDR`, default `0.0.0.0:8001` (OpenAI-compatible HTTP, admin).
    pub http_addr: SocketAddr,
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
            grpc_addr: config::parse_or(vars, "LLM_GATEWAY_ADDR", ([0, 0, 0, 0], 50052).into())?,
            http_addr: config::parse_or(
                vars,
                "LLM_GATEWAY_HTTP_ADDR",
                ([0, 0, 0, 0], 8001).into(),
            )?,
            pool_size: config::parse_or(vars, "LLM_GATEWAY_DB_POOL_SIZE", 8)?,
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-llm-gateway".into(),
            ..PoolOptions::default()
        }
    }
}
