//! Edge configuration, from the environment, including the production gate: in production the
//! edge refuses to start with settings that are only safe on a developer's machine.

use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::seal::MasterKey;
use gathering_core::{ConfigError, Environment};
use gathering_db::PoolOptions;
use gathering_net::Cidr;

/// Default CORS origins (contract §1).
const DEFAULT_CORS: &str =
    "http://localhost:3000,http://localhost:5000,http://localhost:5173,http://127.0.0.1:5173";

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
    /// `AUTH_URL`, default `http://127.0.0.1:50051`: the auth service.
    pub auth_url: String,
    /// `LLM_GATEWAY_URL`, default `http://127.0.0.1:50052`.
    pub llm_gateway_url: String,
    /// `DISABLE_AUTH=true`: no token checks (development only; the caller is a local admin).
    pub disable_auth: bool,
    /// `CORS_ORIGINS`, comma-separated.
    pub cors_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: addresses or networks (CIDR) of reverse proxies whose
    /// `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    pub rate_limits: RateLimits,
    /// `REVOCATION_RELOAD_SECONDS`, default 30: full reload of revocations (a backstop for a
    /// lost notification).
    pub revocation_reload: Duration,
    /// `WS_BUFFER_BATCHES`, default 1024: event batches a WebSocket client may fall behind
    /// before it gets a `lagged` notice (memory stays bounded whatever the client does).
    pub ws_buffer_batches: usize,
    /// Tool settings (`GATHERING_HTTP_ALLOWLIST`, `GATHERING_TOOL_GRANTS`, …; see
    /// `gathering_tools::config`).
    pub tools: gathering_tools::ToolsConfig,
    /// Agent runtime settings (`AGENT_*`, `BACKGROUND_TASKS_MAX_CONCURRENT`).
    pub agents: gathering_agents::AgentsConfig,
    /// `GATHERING_DATA_DIR` (default `.data` under the working directory): the directory whose
    /// disk `/health/checks` watches.
    pub data_dir: std::path::PathBuf,
    /// Workspace settings (`GATHERING_WORKSPACE_EXEC`, `TERMINAL_*`, `LSP_*`, …; see
    /// `crate::workspace::config`).
    pub workspace: crate::workspace::WorkspaceConfig,
    /// Circles and conversations (`CONVERSATION_*`, `CIRCLE_*`).
    pub circles: gathering_circles::CirclesConfig,
    /// Cookie sessions, the login page and a served dashboard build (`GATHERING_PUBLIC_URL`,
    /// `GATHERING_DASHBOARD_DIR`; see `crate::browser_settings`).
    pub browser: crate::browser_settings::BrowserSettings,
}

/// Requests per minute per client IP and endpoint (contract §0 tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `RATE_LIMIT_ENABLED`, default true.
    pub enabled: bool,
    /// `RATE_LIMIT_AUTH_PER_MINUTE` (5), `_WRITE_` (30), `_READ_` (120), `_HEALTH_` (300).
    pub auth: u32,
    pub write: u32,
    pub read: u32,
    pub health: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let env = Environment::from_vars(vars)?;
        let default_grace = if env.is_development() { 0 } else { 3000 };
        let mut cors_origins = config::list(vars, "CORS_ORIGINS");
        if cors_origins.is_empty() {
            cors_origins = DEFAULT_CORS.split(',').map(str::to_owned).collect();
        }
        let trusted_proxies = config::list(vars, "TRUSTED_PROXIES")
            .iter()
            .map(|p| {
                p.parse::<Cidr>()
                    .map_err(|e| ConfigError::new("TRUSTED_PROXIES", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let per_minute = |name: &str, default: u32| -> Result<u32, ConfigError> {
            let n = config::parse_or(vars, name, default)?;
            if n == 0 {
                Err(ConfigError::new(name, "must be at least 1"))
            } else {
                Ok(n)
            }
        };
        let config = Self {
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
            auth_url: config::string_or(vars, "AUTH_URL", "http://127.0.0.1:50051"),
            llm_gateway_url: config::string_or(vars, "LLM_GATEWAY_URL", "http://127.0.0.1:50052"),
            disable_auth: config::bool_or(vars, "DISABLE_AUTH", false)?,
            cors_origins,
            trusted_proxies,
            rate_limits: RateLimits {
                enabled: config::bool_or(vars, "RATE_LIMIT_ENABLED", true)?,
                auth: per_minute("RATE_LIMIT_AUTH_PER_MINUTE", 5)?,
                write: per_minute("RATE_LIMIT_WRITE_PER_MINUTE", 30)?,
                read: per_minute("RATE_LIMIT_READ_PER_MINUTE", 120)?,
                health: per_minute("RATE_LIMIT_HEALTH_PER_MINUTE", 300)?,
            },
            revocation_reload: Duration::from_secs(config::parse_or(
                vars,
                "REVOCATION_RELOAD_SECONDS",
                30,
            )?),
            ws_buffer_batches: config::parse_or(vars, "WS_BUFFER_BATCHES", 1024)?,
            tools: gathering_tools::ToolsConfig::from_vars(vars)?,
            agents: gathering_agents::AgentsConfig::from_vars(vars)?,
            data_dir: config::data_dir(vars),
            workspace: crate::workspace::WorkspaceConfig::from_vars(vars, env)?,
            circles: gathering_circles::CirclesConfig::from_vars(vars)?,
            browser: crate::browser_settings::BrowserSettings::from_vars(vars, env)?,
        };
        config.gate(vars)?;
        Ok(config)
    }

    /// Settings that are refused outside development (contract §7's production gate).
    fn gate(&self, vars: &impl Vars) -> Result<(), ConfigError> {
        if self.disable_auth && !self.env.is_development() {
            return Err(ConfigError::new(
                "DISABLE_AUTH",
                "true is only allowed with GATHERING_ENV=development",
            ));
        }
        if self.env == Environment::Production {
            if config::bool_or(vars, "DEBUG", false)? {
                return Err(ConfigError::new("DEBUG", "must be false in production"));
            }
            if self
                .cors_origins
                .iter()
                .any(|o| o.contains("localhost") || o.contains("127.0.0.1"))
            {
                return Err(ConfigError::new(
                    "CORS_ORIGINS",
                    "must not allow localhost in production",
                ));
            }
            if !self.rate_limits.enabled {
                return Err(ConfigError::new(
                    "RATE_LIMIT_ENABLED",
                    "must be true in production",
                ));
            }
        }
        Ok(())
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-edge".into(),
            ..PoolOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        v.entry("DATABASE_URL".into())
            .or_insert_with(|| "postgres://u@h/d".into());
        v
    }

    #[test]
    fn no_auth_only_in_development() {
        assert!(
            Config::from_vars(&vars(&[("DISABLE_AUTH", "true")]))
                .unwrap()
                .disable_auth
        );
        let err = Config::from_vars(&vars(&[
            ("DISABLE_AUTH", "true"),
            ("GATHERING_ENV", "staging"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "DISABLE_AUTH");
    }

    #[test]
    fn production_gate() {
        let key = "11".repeat(32);
        let prod = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("GATHERING_ENV", "production"),
                ("GATHERING_MASTER_KEY", key.as_str()),
                ("CORS_ORIGINS", "https://app.example.com"),
            ];
            pairs.extend_from_slice(extra);
            Config::from_vars(&vars(&pairs))
        };
        assert!(prod(&[]).is_ok());
        assert_eq!(prod(&[("DEBUG", "true")]).unwrap_err().var, "DEBUG");
        assert_eq!(
            prod(&[("CORS_ORIGINS", "http://localhost:3000")])
                .unwrap_err()
                .var,
            "CORS_ORIGINS"
        );
        assert_eq!(
            prod(&[("DISABLE_AUTH", "true")]).unwrap_err().var,
            "DISABLE_AUTH"
        );
        let no_key = Config::from_vars(&vars(&[
            ("GATHERING_ENV", "production"),
            ("CORS_ORIGINS", "https://a.example"),
        ]))
        .unwrap_err();
        assert_eq!(no_key.var, "GATHERING_MASTER_KEY");
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            Config::from_vars(&vars(&[("EDGE_ADDR", "nope")]))
                .unwrap_err()
                .var,
            "EDGE_ADDR"
        );
        assert_eq!(
            Config::from_vars(&vars(&[("TRUSTED_PROXIES", "x")]))
                .unwrap_err()
                .var,
            "TRUSTED_PROXIES"
        );
        assert_eq!(
            Config::from_vars(&vars(&[("RATE_LIMIT_READ_PER_MINUTE", "0")]))
                .unwrap_err()
                .var,
            "RATE_LIMIT_READ_PER_MINUTE"
        );
    }
}
