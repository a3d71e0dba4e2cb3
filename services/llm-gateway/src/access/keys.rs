//! Virtual keys: random secrets with a recognisable prefix (`sk-gth-` + 43 characters of
//! base64url, 256 bits), stored only as their SHA-256, each with the models it may use, an
//! expiry, a budget and per-minute limits; and team budgets.
//!
//! Every gateway keeps a snapshot of the live keys, indexed by hash, reloaded when a key or a
//! team changes (a trigger sends `NOTIFY llm_keys` in the same transaction), so a revocation
//! applies on every gateway within milliseconds and the request path never queries the table.
//!
//! **Timing.** A presented key is hashed and looked up by its digest. Whatever timing the lookup
//! leaks is about the SHA-256 of the guess, which tells an attacker nothing about a key's
//! preimage (the standard treatment of high-entropy tokens); the final comparison of the
//! digests is constant-time anyway. Operator keys (`LLM_GATEWAY_API_KEYS`) are compared in
//! constant time one by one, as before.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use gathering_core::Shutdown;
use gathering_db::Pool;
use ring::rand::{SecureRandom, SystemRandom};

/// What every virtual key starts with (secret scanners and the redactor recognise it).
pub const KEY_PREFIX: &str = "sk-gth-";
/// The channel the `gateway_keys` / `gateway_teams` triggers notify.
pub const KEYS_CHANNEL: &str = "llm_keys";
/// Random bytes of a key.
const KEY_BYTES: usize = 32;

/// A UTC calendar period of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Daily,
    Monthly,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "daily" => Some(Period::Daily),
            "monthly" => Some(Period::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }
}

/// A spending limit in USD over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub amount_usd: f64,
    pub period: Period,
}

impl Budget {
    fn from_columns(amount: Option<f64>, period: Option<String>) -> Option<Budget> {
        Some(Budget {
            amount_usd: amount?,
            period: Period::parse(period.as_deref()?)?,
        })
    }
}

/// A live (not revoked) key as the request path sees it.
#[derive(Debug)]
pub struct VirtualKey {
    pub id: i64,
    pub name: String,
    pub team: Option<String>,
    /// `provider/model` patterns with `*` wildcards.
    pub models: Vec<String>,
    pub expires_at: Option<SystemTime>,
    pub budget: Option<Budget>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    hash: [u8; 32],
}

impl VirtualKey {
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether the key may call `label` (`provider/model`).
    pub fn allows(&self, label: &str) -> bool {
        self.models.iter().any(|p| pattern_matches(p, label))
    }

    /// Whether the key has per-minute limits.
    pub fn limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// Glob matching with `*` (any run of characters, `/` included); everything else literal.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The SHA-256 of a presented key.
pub fn hash(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A new key: the secret (shown once), its hash (stored) and its hint (`sk-gth-abcd...wxyz`).
pub struct NewKey {
    pub secret: String,
    pub hash: [u8; 32],
    pub hint: String,
}

pub fn generate() -> Result<NewKey, ring::error::Unspecified> {
    let mut bytes = [0u8; KEY_BYTES];
    SystemRandom::new().fill(&mut bytes)?;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let secret = format!("{KEY_PREFIX}{body}");
    let hint = format!("{KEY_PREFIX}{}...{}", &body[..4], &body[body.len() - 4..]);
    Ok(NewKey {
        hash: hash(&secret),
        secret,
        hint,
    })
}

/// The live keys by hash, and the team budgets.
#[derive(Debug, Default)]
pub struct KeySnapshot {
    by_hash: HashMap<[u8; 32], Arc<VirtualKey>>,
    pub teams: HashMap<String, Budget>,
}

impl KeySnapshot {
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

pub struct KeyStore {
    current: RwLock<Arc<KeySnapshot>>,
}

impl Default for KeyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyStore {
    pub fn new() -> KeyStore {
        KeyStore {
            current: RwLock::new(Arc::new(KeySnapshot::default())),
        }
    }

    pub fn snapshot(&self) -> Arc<KeySnapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The live key whose secret is `presented`, if any (expired keys included: the caller
    /// says why it refuses them).
    pub fn find(&self, presented: &str) -> Option<Arc<VirtualKey>> {
        let digest = hash(presented);
        let snapshot = self.snapshot();
        let key = snapshot.by_hash.get(&digest)?;
        gathering_core::secret::constant_time_eq(&key.hash, &digest).then(|| key.clone())
    }

    /// The budget of `team`, if it has one.
    pub fn team_budget(&self, team: &str) -> Option<Budget> {
        self.snapshot().teams.get(team).copied()
    }

    /// Rebuilds the snapshot from `agent.gateway_keys` and `agent.gateway_teams`.
    pub async fn reload(&self, pool: &Pool) -> Result<(), gathering_db::DbError> {
        let client = pool.get().await?;
        let key_rows = client
            .query(
                "SELECT id, name, team, key_hash, models, expires_at, budget_usd, budget_period, \
                        rpm, tpm \
                 FROM agent.gateway_keys WHERE revoked_at IS NULL",
                &[],
            )
            .await?;
        let team_rows = client
            .query(
                "SELECT name, budget_usd, budget_period FROM agent.gateway_teams",
                &[],
            )
            .await?;
        drop(client);
        let mut by_hash = HashMap::with_capacity(key_rows.len());
        for r in &key_rows {
            let raw: Vec<u8> = r.try_get(3)?;
            let Ok(hash) = <[u8; 32]>::try_from(raw.as_slice()) else {
                continue;
            };
            let positive = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok());
            let key = VirtualKey {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                team: r.try_get(2)?,
                models: r.try_get(4)?,
                expires_at: r.try_get(5)?,
                budget: Budget::from_columns(r.try_get(6)?, r.try_get(7)?),
                rpm: positive(r.try_get(8)?),
                tpm: positive(r.try_get(9)?),
                hash,
            };
            by_hash.insert(hash, Arc::new(key));
        }
        let mut teams = HashMap::new();
        for r in &team_rows {
            if let Some(b) = Budget::from_columns(r.try_get(1)?, r.try_get(2)?) {
                teams.insert(r.try_get::<_, String>(0)?, b);
            }
        }
        let snapshot = Arc::new(KeySnapshot { by_hash, teams });
        match self.current.write() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        Ok(())
    }
}

/// Keeps the key snapshot current (see [`crate::reloader`]).
pub async fn run_reloader(
    store: Arc<KeyStore>,
    pool: Pool,
    database_url: String,
    refresh: Duration,
    shutdown: Shutdown,
) {
    crate::reloader::reload_on_notify(KEYS_CHANNEL, database_url, refresh, shutdown, || {
        let (store, pool) = (store.clone(), pool.clone());
        async move {
            if let Err(e) = store.reload(&pool).await {
                tracing::warn!(error = %e, "key reload failed; keeping the previous keys");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "openai/gpt-4o"));
        assert!(pattern_matches("openai/*", "openai/gpt-4o-mini"));
        assert!(!pattern_matches("openai/*", "anthropic/claude"));
        assert!(!pattern_matches("openai/*", "openai"));
        assert!(pattern_matches("*/gpt-4o*", "openai/gpt-4o-mini"));
        assert!(pattern_matches(
            "anthropic/claude-*-4-5",
            "anthropic/claude-haiku-4-5"
        ));
        assert!(!pattern_matches("openai/gpt-4o", "openai/gpt-4o-mini"));
        assert!(pattern_matches("a*b*c", "aXbYbZc"));
        assert!(!pattern_matches("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 43);
        assert_eq!(a.hash, hash(&a.secret));
        assert!(a.hint.starts_with(KEY_PREFIX) && a.hint.contains("..."));
        assert!(!a.hint.contains(&a.secret[KEY_PREFIX.len()..]));
    }
}
