//! Who may spend what through the OpenAI-compatible HTTP API: virtual keys with the models
//! they may call, budgets per key and team, per-key rate limits. The gateway owns the tables
//! (`agent.gateway_keys`, `gateway_teams`, `gateway_spend`, `gateway_rate`); the edge's admin
//! routes manage keys through its gRPC API ([`manage`]).
//!
//! A call is admitted in this order, before anything is sent anywhere: the key is live (not
//! revoked, not expired), every model the call may reach (fallbacks included) matches one of
//! its patterns (else 403), the key's and its team's budgets are not spent (else 429
//! `budget_exceeded`), and its per-minute limits allow it (else 429 `rate_limit_exceeded`).
//!
//! Trusted callers — the operator's keys (`LLM_GATEWAY_API_KEYS`), other GatheRing services
//! over gRPC (agents, pipelines: they hold a service credential), and anyone when the HTTP API
//! is open (no operator keys, development or loopback) — are not limited by user keys.

pub mod budget;
pub mod keys;
pub mod limits;
pub mod manage;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gathering_core::Shutdown;
use gathering_db::Pool;

pub use budget::SpendCache;
pub use keys::{KeyStore, VirtualKey};
pub use limits::{RateInfo, RateLimiter};

use crate::error::GatewayError;

/// On whose authority a call is made.
#[derive(Debug, Clone, Default)]
pub enum Principal {
    /// An operator key, a service credential, or the open HTTP API.
    #[default]
    Trusted,
    Key(Arc<VirtualKey>),
}

impl Principal {
    pub fn key(&self) -> Option<&Arc<VirtualKey>> {
        match self {
            Principal::Trusted => None,
            Principal::Key(k) => Some(k),
        }
    }

    /// What the response cache is shared within: a team's keys share answers, a key without
    /// a team has its own, trusted callers share theirs. (A shared cache would tell one team
    /// whether another sent a given prompt.)
    pub fn cache_scope(&self) -> String {
        match self.key() {
            None => "trusted".to_owned(),
            Some(k) => match &k.team {
                Some(t) => format!("team:{t}"),
                None => format!("key:{}", k.id),
            },
        }
    }
}

/// Keys, spend and limits, shared by the request path and the background tasks.
#[derive(Clone)]
pub struct Access {
    pub keys: Arc<KeyStore>,
    pub spend: Arc<SpendCache>,
    pub limits: Arc<RateLimiter>,
}

impl Access {
    pub fn new(pool: Pool, rate_flush: Duration) -> Access {
        Access {
            keys: Arc::new(KeyStore::new()),
            spend: Arc::new(SpendCache::new()),
            limits: Arc::new(RateLimiter::new(pool, rate_flush)),
        }
    }

    /// Starts the key reloader, the spend refresher and the rate-limit flusher.
    pub fn spawn_tasks(
        &self,
        pool: &Pool,
        database_url: &str,
        key_refresh: Duration,
        spend_refresh: Duration,
        shutdown: &Shutdown,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(keys::run_reloader(
                self.keys.clone(),
                pool.clone(),
                database_url.to_owned(),
                key_refresh,
                shutdown.clone(),
            )),
            tokio::spawn(budget::run_refresher(
                self.spend.clone(),
                pool.clone(),
                spend_refresh,
                shutdown.clone(),
            )),
            tokio::spawn(limits::run_flusher(self.limits.clone(), shutdown.clone())),
        ]
    }

    /// Admits a call of `principal` that may reach `models` (`provider/model` labels), or says
    /// why not. Trusted callers pass untouched.
    pub async fn admit<'a>(
        &self,
        principal: &Principal,
        models: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<RateInfo>, GatewayError> {
        let Some(key) = principal.key() else {
            return Ok(None);
        };
        if key.expired(SystemTime::now()) {
            return Err(GatewayError::KeyExpired);
        }
        for label in models {
            if !key.allows(label) {
                return Err(GatewayError::ModelNotAllowed(label.to_owned()));
            }
        }
        let team_budget = key.team.as_deref().and_then(|t| self.keys.team_budget(t));
        self.spend.check(key, team_budget)?;
        let refused = |e: &GatewayError| {
            metrics::counter!("llm_gateway_key_refusals_total", "reason" => e.kind()).increment(1);
        };
        self.limits.admit(key).await.inspect_err(refused)
    }

    /// Counts a finished call against its key and team (spend now, tokens per minute).
    pub fn record(&self, key_id: Option<i64>, team: Option<&str>, cost: Option<f64>, tokens: u64) {
        self.spend.note(key_id, team, cost.unwrap_or(0.0));
        if let Some(id) = key_id {
            self.limits.note_tokens(id, tokens);
        }
    }
}
