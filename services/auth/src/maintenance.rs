//! Periodic upkeep, safe to run on every instance: expired revocations, refresh tokens and
//! login counters are deleted, and the signing key is rotated when due.

use std::sync::Arc;

use gathering_core::Shutdown;
use gathering_db::Pool;

use crate::config::Config;
use crate::error::AuthError;
use crate::keys::{self, Keys};

/// What one cleanup pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    pub revoked_tokens: u64,
    pub user_revocations: u64,
    pub refresh_tokens: u64,
    pub login_attempts: u64,
}

pub async fn cleanup(pool: &Pool, config: &Config) -> Result<Cleaned, AuthError> {
    let db = pool.get().await?;
    let access_ms = config.access_ttl.as_millis() as i64;
    let window_ms = config.throttle.window.as_millis() as i64;
    Ok(Cleaned {
        revoked_tokens: db
            .execute(
                "DELETE FROM auth.token_blacklist WHERE expires_at <= now()",
                &[],
            )
            .await?,
        // Once every token issued before the revocation has expired, it has nothing left to refuse.
        user_revocations: db
            .execute(
                "DELETE FROM auth.user_revocations \
                 WHERE revoked_before < now() - $1::int8 * interval '1 millisecond'",
                &[&access_ms],
            )
            .await?,
        refresh_tokens: db
            .execute(
                "DELETE FROM auth.refresh_tokens WHERE expires_at < now() - interval '1 day'",
                &[],
            )
            .await?,
        login_attempts: db
            .execute(
                "DELETE FROM auth.login_attempts \
                 WHERE (locked_until IS NULL OR locked_until < now()) \
                   AND window_started_at < now() - $1::int8 * interval '1 millisecond'",
                &[&window_ms],
            )
            .await?,
    })
}

pub async fn run(pool: Pool, config: Arc<Config>, keys: Keys, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(config.cleanup_interval) => {}
            _ = shutdown.wait() => return,
        }
        match cleanup(&pool, &config).await {
            Ok(c) if c != Cleaned::default() => tracing::info!(?c, "expired auth state deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "auth cleanup failed"),
        }
        if let Err(e) = keys::refresh(
            &keys,
            &pool,
            &config.master_key,
            config.key_rotation,
            config.key_overlap(),
        )
        .await
        {
            tracing::warn!(error = %e, "signing key check failed");
        }
    }
}
