//! Auth configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::seal::MasterKey;
use gathering_core::{ConfigError, Environment, Secret};
use gathering_db::PoolOptions;

use crate::password::{self, HashCost};

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `AUTH_ADDR`, default `0.0.0.0:50051` (gRPC, plus `/health` and `/metrics` over HTTP/1.1).
    pub addr: SocketAddr,
    pub pool_size: usize,
    pub master_key: MasterKey,
    /// `JWT_ISSUER` (default `gathering`) and `JWT_AUDIENCE` (default `gathering-api`).
    pub issuer: String,
    pub audience: String,
    /// `ACCESS_TOKEN_TTL_SECONDS`, default 900 (15 minutes).
    pub access_ttl: Duration,
    /// `REFRESH_TOKEN_TTL_SECONDS`, default 30 days.
    pub refresh_ttl: Duration,
    /// `AUTH_KEY_ROTATION_DAYS`, default 30: age at which a new signing key takes over.
    pub key_rotation: Duration,
    /// `AUTH_ARGON2_MEMORY_KIB` / `_ITERATIONS` / `_PARALLELISM`; never below m=19 MiB, t=2, p=1.
    pub hash_cost: HashCost,
    /// `AUTH_HASH_CONCURRENCY`: password hashes run at once in the process (default half the
    /// cores, at least one), so a login storm cannot take every core.
    pub hash_concurrency: usize,
    /// `ADMIN_EMAIL` + `ADMIN_PASSWORD_HASH` (argon2 PHC or bcrypt): the bootstrap admin.
    pub admin: Option<(String, Secret)>,
    pub throttle: ThrottleConfig,
    /// `AUTH_CLEANUP_INTERVAL_SECONDS`, default 60: purge of expired revocations and tokens,
    /// and the key-rotation check.
    pub cleanup_interval: Duration,
    /// `GATHERING_REGISTRATION`: `open` (anyone may `POST /auth/register`) or `closed`
    /// (administrators create accounts). Default open in development, closed elsewhere.
    pub registration_open: bool,
    /// `DISABLE_AUTH=true` (development only): calls without a user token act as the local
    /// developer, mirroring the edge's no-auth mode.
    pub disable_auth: bool,
}

/// Brute-force protection, shared by every instance through `auth.login_attempts`.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// `LOGIN_WINDOW_SECONDS`, default 900: failures count within this window.
    pub window: Duration,
    /// `LOGIN_LOCK_THRESHOLD`, default 10 failures per account.
    pub account_threshold: i32,
    /// `LOGIN_IP_LOCK_THRESHOLD`, default 100 failures per client IP.
    pub ip_threshold: i32,
    /// `LOGIN_LOCK_SECONDS`, default 900.
    pub lock_for: Duration,
    /// Failures per account after which each further failure is answered more slowly.
    pub delay_after: i32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let env = Environment::from_vars(vars)?;
        let secs = |name: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(config::parse_or(vars, name, default)?))
        };
        let hash_cost = HashCost {
            memory_kib: config::parse_or(
                vars,
                "AUTH_ARGON2_MEMORY_KIB",
                HashCost::MINIMUM.memory_kib,
            )?,
            iterations: config::parse_or(
                vars,
                "AUTH_ARGON2_ITERATIONS",
                HashCost::MINIMUM.iterations,
            )?,
            parallelism: config::parse_or(
                vars,
                "AUTH_ARGON2_PARALLELISM",
                HashCost::MINIMUM.parallelism,
            )?,
        };
        if hash_cost.memory_kib < HashCost::MINIMUM.memory_kib
            || hash_cost.iterations < HashCost::MINIMUM.iterations
            || hash_cost.parallelism < 1
        {
            return Err(ConfigError::new(
                "AUTH_ARGON2_MEMORY_KIB",
                "argon2id cost below m=19456 KiB, t=2, p=1",
            ));
        }
        let admin = match (vars.get("ADMIN_EMAIL"), vars.get("ADMIN_PASSWORD_HASH")) {
            (Some(email), Some(hash)) => {
                if !password::is_supported_hash(hash.trim()) {
                    return Err(ConfigError::new(
                        "ADMIN_PASSWORD_HASH",
                        "not an argon2 PHC string or a bcrypt hash",
                    ));
                }
                Some((email.trim().to_lowercase(), Secret::new(hash.trim())))
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "ADMIN_PASSWORD_HASH",
                    "is required with ADMIN_EMAIL",
                ));
            }
            _ => None,
        };
        let access_ttl = secs("ACCESS_TOKEN_TTL_SECONDS", 900)?;
        if access_ttl.is_zero() {
            return Err(ConfigError::new(
                "ACCESS_TOKEN_TTL_SECONDS",
                "must be positive",
            ));
        }
        let registration_open = match vars.get("GATHERING_REGISTRATION").as_deref().map(str::trim) {
            None | Some("") => env.is_development(),
            Some("open") => true,
            Some("closed") => false,
            Some(_) => {
                return Err(ConfigError::new(
                    "GATHERING_REGISTRATION",
                    "must be open or closed",
                ));
            }
        };
        let disable_auth = config::bool_or(vars, "DISABLE_AUTH", false)?;
        if disable_auth && !env.is_development() {
            return Err(ConfigError::new(
                "DISABLE_AUTH",
                "true is only allowed with GATHERING_ENV=development",
            ));
        }
        Ok(Self {
            env,
            registration_open,
            disable_auth,
            database_url: config::database_url(vars)?,
            addr: config::parse_or(vars, "AUTH_ADDR", ([0, 0, 0, 0], 50051).into())?,
            pool_size: config::parse_or(vars, "AUTH_DB_POOL_SIZE", 16)?,
            master_key: MasterKey::from_vars(vars, env)?,
            issuer: config::string_or(vars, "JWT_ISSUER", "gathering"),
            audience: config::string_or(vars, "JWT_AUDIENCE", "gathering-api"),
            access_ttl,
            refresh_ttl: secs("REFRESH_TOKEN_TTL_SECONDS", 30 * 86400)?,
            key_rotation: Duration::from_secs(
                86400 * config::parse_or::<u64>(vars, "AUTH_KEY_ROTATION_DAYS", 30)?,
            ),
            hash_cost,
            hash_concurrency: config::parse_or(
                vars,
                "AUTH_HASH_CONCURRENCY",
                password::default_concurrency(),
            )?
            .max(1),
            admin,
            throttle: ThrottleConfig {
                window: secs("LOGIN_WINDOW_SECONDS", 900)?,
                account_threshold: config::parse_or(vars, "LOGIN_LOCK_THRESHOLD", 10)?,
                ip_threshold: config::parse_or(vars, "LOGIN_IP_LOCK_THRESHOLD", 100)?,
                lock_for: secs("LOGIN_LOCK_SECONDS", 900)?,
                delay_after: 3,
            },
            cleanup_interval: secs("AUTH_CLEANUP_INTERVAL_SECONDS", 60)?,
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            application_name: "gathering-auth".into(),
            ..PoolOptions::default()
        }
    }

    /// How long a retired signing key keeps verifying.
    pub fn key_overlap(&self) -> Duration {
        self.access_ttl + Duration::from_secs(300)
    }
}
