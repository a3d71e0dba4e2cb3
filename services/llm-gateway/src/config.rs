//! Gateway configuration, from the environment.
//!
//! Provider settings keep the names every SDK uses: `{OPENAI,ANTHROPIC,DEEPSEEK,OLLAMA}_API_KEY`
//! and `*_BASE_URL` (and `{NAME}_API_KEY` for any other provider of the catalogue). A key stored
//! through the edge's `/settings` routes takes precedence over the environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use gathering_core::config::{self, ProcessEnv, Vars};
use gathering_core::seal::MasterKey;
use gathering_core::{ConfigError, Environment, Secret};
use gathering_db::PoolOptions;

/// Providers whose environment variables are always read.
pub const KNOWN_PROVIDERS: [&str; 6] = [
    "openai",
    "anthropic",
    "deepseek",
    "ollama",
    "mistral",
    "google",
];

/// What the environment says about one provider.
#[derive(Debug, Clone, Default)]
pub struct ProviderEnv {
    pub api_key: Option<Secret>,
    pub base_url: Option<String>,
    pub default_model: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub database_url: String,
    /// `LLM_GATEWAY_ADDR`, default `0.0.0.0:50052` (gRPC).
    pub grpc_addr: SocketAddr,
    /// `LLM_GATEWAY_HTTP_ADDR` (OpenAI-compatible HTTP, admin): default `127.0.0.1:8001` in
    /// development, `0.0.0.0:8001` elsewhere, where it must be loopback or have
    /// `LLM_GATEWAY_API_KEYS` set (the gateway refuses to start otherwise: an open port would
    /// be an open proxy spending the provider keys).
    pub http_addr: SocketAddr,
    pub pool_size: usize,
    /// Opens provider keys stored through the edge.
    pub master_key: MasterKey,
    /// `USE_MOCK_PROVIDERS`: enables the `mock` provider (offline demos).
    pub use_mock_providers: bool,
    /// Per provider name (lower case).
    pub providers: HashMap<String, ProviderEnv>,
    /// `LLM_GATEWAY_API_KEYS`: operator keys. When set, the HTTP API requires
    /// `Authorization: Bearer <one of them>` or a virtual key (see [`crate::access`]). Virtual
    /// keys do not replace this rule for starting outside development: operator keys or a
    /// loopback address (virtual keys live in the database and may all be revoked).
    pub api_keys: Vec<Secret>,
    /// `GATHERING_HTTP_ALLOWLIST`: hosts/networks that admin-set provider URLs may reach
    /// despite the outbound guard.
    pub http_allowlist: gathering_net::Allowlist,
    pub reliability: Reliability,
    /// `LLM_USAGE_QUEUE`: usage records waiting to be written (bounded; beyond, dropped).
    pub usage_queue: usize,
    /// `LLM_USAGE_BATCH`: rows per insert.
    pub usage_batch: usize,
    /// `LLM_USAGE_FLUSH_MS`: longest a record waits for its batch.
    pub usage_flush: Duration,
    /// `LLM_REGISTRY_REFRESH_MS`: catalogue and key reload period (also reloaded on NOTIFY).
    pub registry_refresh: Duration,
    /// `LLM_MAX_BODY_BYTES`: largest HTTP request body.
    pub max_body_bytes: usize,
    /// `LLM_SPEND_REFRESH_MS`: how often budgets' spend is re-read (default 1000).
    pub spend_refresh: Duration,
    /// `LLM_RATE_FLUSH_MS`: how often per-key token counts and idle leases are flushed
    /// (default 100).
    pub rate_flush: Duration,
    /// `LLM_CACHE`, `LLM_CACHE_TTL_SECONDS`, `LLM_CACHE_MAX_BYTES`, `LLM_CACHE_MAX_ENTRY_BYTES`.
    pub cache: crate::cache::CacheConfig,
}

/// Timeouts, retries, breaker and concurrency.
#[derive(Debug, Clone)]
pub struct Reliability {
    /// `LLM_REQUEST_TIMEOUT_MS`: one upstream attempt (non-streaming), default 120 s.
    pub attempt_timeout: Duration,
    /// `LLM_DEADLINE_MS`: a whole call with its retries and fallbacks, unless the caller says.
    pub default_deadline: Duration,
    /// `LLM_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Duration,
    /// `LLM_STREAM_IDLE_TIMEOUT_MS`: longest silence inside a stream (and before its headers).
    pub stream_idle_timeout: Duration,
    /// `LLM_MAX_RETRIES`: retries after the first attempt, per model.
    pub max_retries: u32,
    /// `LLM_RETRY_BASE_MS` / `LLM_RETRY_MAX_MS`: exponential back-off with full jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `LLM_MAX_RETRY_AFTER_MS`: a `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
    /// `LLM_BREAKER_FAILURES`: consecutive failures that open a provider+model circuit.
    pub breaker_failures: u32,
    /// `LLM_BREAKER_COOLDOWN_MS`: how long it stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// `LLM_MAX_CONCURRENCY_PER_PROVIDER`: in-flight upstream requests per provider.
    pub max_concurrency: usize,
    /// `LLM_QUEUE_TIMEOUT_MS`: longest wait for a free slot before failing.
    pub queue_timeout: Duration,
}

fn millis(vars: &impl Vars, name: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(config::parse_or(
        vars, name, default,
    )?))
}

fn provider_env(vars: &impl Vars, name: &str) -> ProviderEnv {
    let upper = name.to_ascii_uppercase();
    ProviderEnv {
        api_key: vars.get(&format!("{upper}_API_KEY")).map(Secret::new),
        base_url: vars
            .get(&format!("{upper}_BASE_URL"))
            .map(|u| u.trim().trim_end_matches('/').to_owned()),
        default_model: vars.get(&format!("{upper}_DEFAULT_MODEL")),
    }
}

impl Config {
    /// Reads the process environment, including `{NAME}_API_KEY` of providers beyond the
    /// known ones (a custom OpenAI-compatible provider of the catalogue).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::from_vars(&ProcessEnv)?;
        for (var, _) in std::env::vars() {
            let Some(name) = var
                .strip_suffix("_API_KEY")
                .or_else(|| var.strip_suffix("_BASE_URL"))
            else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.len() <= 50
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if valid && !config.providers.contains_key(&name) {
                config
                    .providers
                    .insert(name.clone(), provider_env(&ProcessEnv, &name));
            }
        }
        Ok(config)
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let env = Environment::from_vars(vars)?;
        let providers = KNOWN_PROVIDERS
            .iter()
            .map(|name| ((*name).to_owned(), provider_env(vars, name)))
            .collect();
        let reliability = Reliability {
            attempt_timeout: millis(vars, "LLM_REQUEST_TIMEOUT_MS", 120_000)?,
            default_deadline: millis(vars, "LLM_DEADLINE_MS", 300_000)?,
            connect_timeout: millis(vars, "LLM_CONNECT_TIMEOUT_MS", 5_000)?,
            stream_idle_timeout: millis(vars, "LLM_STREAM_IDLE_TIMEOUT_MS", 60_000)?,
            max_retries: config::parse_or(vars, "LLM_MAX_RETRIES", 2)?,
            retry_base: millis(vars, "LLM_RETRY_BASE_MS", 200)?,
            retry_max: millis(vars, "LLM_RETRY_MAX_MS", 10_000)?,
            max_retry_after: millis(vars, "LLM_MAX_RETRY_AFTER_MS", 30_000)?,
            breaker_failures: config::parse_or(vars, "LLM_BREAKER_FAILURES", 5)?,
            breaker_cooldown: millis(vars, "LLM_BREAKER_COOLDOWN_MS", 30_000)?,
            max_concurrency: config::parse_or(vars, "LLM_MAX_CONCURRENCY_PER_PROVIDER", 256)?,
            queue_timeout: millis(vars, "LLM_QUEUE_TIMEOUT_MS", 10_000)?,
        };
        if reliability.max_concurrency == 0 {
            return Err(ConfigError::new(
                "LLM_MAX_CONCURRENCY_PER_PROVIDER",
                "must be at least 1",
            ));
        }
        if reliability.breaker_failures == 0 {
            return Err(ConfigError::new(
                "LLM_BREAKER_FAILURES",
                "must be at least 1",
            ));
        }
        let usage_queue: usize = config::parse_or(vars, "LLM_USAGE_QUEUE", 65_536)?;
        let usage_batch: usize = config::parse_or(vars, "LLM_USAGE_BATCH", 1_000)?;
        if usage_queue == 0 || usage_batch == 0 {
            return Err(ConfigError::new(
                "LLM_USAGE_QUEUE",
                "LLM_USAGE_QUEUE and LLM_USAGE_BATCH must be at least 1",
            ));
        }
        let default_http: SocketAddr = if env.is_development() {
            ([127, 0, 0, 1], 8001).into()
        } else {
            ([0, 0, 0, 0], 8001).into()
        };
        let http_addr: SocketAddr = config::parse_or(vars, "LLM_GATEWAY_HTTP_ADDR", default_http)?;
        let api_keys: Vec<Secret> = config::list(vars, "LLM_GATEWAY_API_KEYS")
            .into_iter()
            .map(Secret::new)
            .collect();
        if !env.is_development() && api_keys.is_empty() && !http_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "LLM_GATEWAY_API_KEYS",
                "is required outside development unless LLM_GATEWAY_HTTP_ADDR is a loopback \
                 address: the OpenAI-compatible HTTP API would be open to anyone who can reach it",
            ));
        }
        let http_allowlist = gathering_net::Allowlist::parse(
            &vars.get("GATHERING_HTTP_ALLOWLIST").unwrap_or_default(),
        )
        .map_err(|e| ConfigError::new("GATHERING_HTTP_ALLOWLIST", e))?;
        let cache = crate::cache::CacheConfig {
            enabled: config::bool_or(vars, "LLM_CACHE", true)?,
            ttl: Duration::from_secs(config::parse_or(vars, "LLM_CACHE_TTL_SECONDS", 3_600)?),
            max_bytes: config::parse_or(vars, "LLM_CACHE_MAX_BYTES", 256 * 1024 * 1024)?,
            max_entry_bytes: config::parse_or(vars, "LLM_CACHE_MAX_ENTRY_BYTES", 1024 * 1024)?,
            sweep_every: Duration::from_secs(30),
        };
        if cache.ttl.is_zero() || cache.max_bytes <= 0 {
            return Err(ConfigError::new(
                "LLM_CACHE_TTL_SECONDS",
                "LLM_CACHE_TTL_SECONDS and LLM_CACHE_MAX_BYTES must be at least 1 (LLM_CACHE=false turns the cache off)",
            ));
        }
        Ok(Self {
            env,
            database_url: config::database_url(vars)?,
            grpc_addr: config::parse_or(vars, "LLM_GATEWAY_ADDR", ([0, 0, 0, 0], 50052).into())?,
            http_addr,
            http_allowlist,
            pool_size: config::parse_or(vars, "LLM_GATEWAY_DB_POOL_SIZE", 8)?,
            master_key: MasterKey::from_vars(vars, env)?,
            use_mock_providers: config::bool_or(vars, "USE_MOCK_PROVIDERS", false)?,
            providers,
            api_keys,
            reliability,
            usage_queue,
            usage_batch,
            usage_flush: millis(vars, "LLM_USAGE_FLUSH_MS", 200)?,
            registry_refresh: millis(vars, "LLM_REGISTRY_REFRESH_MS", 30_000)?,
            max_body_bytes: config::parse_or(vars, "LLM_MAX_BODY_BYTES", 8 * 1024 * 1024)?,
            spend_refresh: millis(vars, "LLM_SPEND_REFRESH_MS", 1_000)?,
            rate_flush: millis(vars, "LLM_RATE_FLUSH_MS", 100)?,
            cache,
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
