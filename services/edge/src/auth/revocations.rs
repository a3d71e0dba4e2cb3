//! The revocation set: revoked token ids and users revoked as a whole, held in memory so
//! checking a request costs no network call. It is loaded from the database at start, kept
//! current by `LISTEN auth_revocations`, and fully re-read periodically and after a lost
//! connection, so a token revoked on any instance is refused by every edge within
//! milliseconds and after any restart. Entries leave only when their tokens have expired,
//! which bounds the set by the tokens issued within one access-token lifetime.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use gathering_core::Shutdown;
use gathering_core::claims::{AccessClaims, REVOCATION_CHANNEL};
use gathering_db::Pool;
use gathering_db::listen::ListenerEvent;
use gathering_db::tokio_postgres::Error as PgError;

#[derive(Default)]
struct State {
    /// jti → expiry (unix seconds).
    tokens: HashMap<String, i64>,
    /// user id → tokens issued at or before this instant (unix ms) are revoked.
    users: HashMap<String, i64>,
}

#[derive(Default)]
pub struct Revocations {
    state: RwLock<State>,
}

impl Revocations {
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if state.tokens.contains_key(&claims.jti) {
            return true;
        }
        let issued_ms = if claims.iat_ms > 0 {
            claims.iat_ms
        } else {
            claims.iat * 1000
        };
        state
            .users
            .get(&claims.sub)
            .is_some_and(|&before| issued_ms <= before)
    }

    pub fn revoke_token(&self, jti: String, expires: i64) {
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .tokens
            .insert(jti, expires);
    }

    pub fn revoke_user(&self, user: String, before_ms: i64) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let entry = state.users.entry(user).or_insert(before_ms);
        *entry = (*entry).max(before_ms);
    }

    /// Number of revoked token ids held.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .tokens
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one notification payload (`jti:<exp>:<jti>` or `user:<ms>:<id>`).
    pub fn apply(&self, payload: &str) {
        let mut parts = payload.splitn(3, ':');
        match (
            parts.next(),
            parts.next().and_then(|t| t.parse::<i64>().ok()),
            parts.next(),
        ) {
            (Some("jti"), Some(exp), Some(jti)) => self.revoke_token(jti.to_owned(), exp),
            (Some("user"), Some(ms), Some(user)) => self.revoke_user(user.to_owned(), ms),
            _ => tracing::warn!(payload, "unreadable revocation notification"),
        }
    }

    /// Merges the database's live revocations in (never drops an entry a notification added
    /// while the query ran), and forgets expired ones.
    pub async fn reload(
        &self,
        pool: &Pool,
        max_token_age: Duration,
    ) -> Result<(), gathering_db::DbError> {
        let client = pool.get().await?;
        let tokens = client
            .query(
                "SELECT token_hash, extract(epoch FROM expires_at)::int8 FROM auth.token_blacklist \
                 WHERE expires_at > now()",
                &[],
            )
            .await?;
        let users = client
            .query(
                "SELECT user_id, (extract(epoch FROM revoked_before) * 1000)::int8 FROM auth.user_revocations",
                &[],
            )
            .await?;
        let tokens = tokens
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(String, i64)>, PgError>>()?;
        let users = users
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(String, i64)>, PgError>>()?;
        let now = Utc::now();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.tokens.extend(tokens);
        for (user, ms) in users {
            let entry = state.users.entry(user).or_insert(ms);
            *entry = (*entry).max(ms);
        }
        let now_s = now.timestamp();
        let oldest_live_ms = now.timestamp_millis() - max_token_age.as_millis() as i64;
        state.tokens.retain(|_, exp| *exp > now_s);
        state.users.retain(|_, before| *before >= oldest_live_ms);
        Ok(())
    }
}

/// Loads the set and keeps it current until `shutdown`.
pub async fn start(
    pool: Pool,
    database_url: &str,
    reload_every: Duration,
    shutdown: Shutdown,
) -> Result<Arc<Revocations>, gathering_db::DbError> {
    // Longest an access token may live; user revocations older than this refuse nothing.
    let max_token_age = Duration::from_secs(24 * 3600);
    let revocations = Arc::new(Revocations::default());
    let mut listener =
        gathering_db::Listener::start(database_url, &[REVOCATION_CHANNEL], shutdown.clone())
            .await?;
    revocations.reload(&pool, max_token_age).await?;
    let set = revocations.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = listener.recv() => match event {
                    Some(ListenerEvent::Notification(n)) => set.apply(&n.payload),
                    Some(ListenerEvent::Reconnected) => {
                        if let Err(e) = set.reload(&pool, max_token_age).await {
                            tracing::warn!(error = %e, "reloading revocations failed");
                        }
                    }
                    None => return,
                },
                _ = tokio::time::sleep(reload_every) => {
                    if let Err(e) = set.reload(&pool, max_token_age).await {
                        tracing::warn!(error = %e, "reloading revocations failed");
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    });
    Ok(revocations)
}
