//! Revoked access tokens (`auth.token_blacklist`, by jti) and revoked users
//! (`auth.user_revocations`). Each revocation notifies the edges in the same transaction.

use chrono::{DateTime, Utc};
use gathering_core::claims::REVOCATION_CHANNEL;
use gathering_db::GenericClient;

use crate::error::AuthError;

/// Revokes one access token until it expires.
pub async fn revoke_token<C: GenericClient>(
    c: &C,
    jti: &str,
    expires_at: DateTime<Utc>,
    user_id: &str,
    reason: &str,
) -> Result<bool, AuthError> {
    let payload = format!("jti:{}:{jti}", expires_at.timestamp());
    let row = c
        .query_one(
            "WITH ins AS ( \
                 INSERT INTO auth.token_blacklist (token_hash, expires_at, user_id, reason) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (token_hash) DO NOTHING RETURNING id) \
             SELECT count(*) FROM ins, (SELECT pg_notify($5, $6)) AS n",
            &[
                &jti,
                &expires_at,
                &user_id,
                &reason,
                &REVOCATION_CHANNEL,
                &payload,
            ],
        )
        .await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

/// Refuses every access token of `user_id` issued until now.
pub async fn revoke_user<C: GenericClient>(
    c: &C,
    user_id: &str,
    reason: &str,
) -> Result<(), AuthError> {
    let row = c
        .query_one(
            "INSERT INTO auth.user_revocations (user_id, revoked_before, reason) \
             VALUES ($1, now(), $2) \
             ON CONFLICT (user_id) DO UPDATE SET revoked_before = now(), reason = $2 \
             RETURNING (extract(epoch FROM revoked_before) * 1000)::int8",
            &[&user_id, &reason],
        )
        .await?;
    let at: i64 = row.try_get(0)?;
    let payload = format!("user:{at}:{user_id}");
    c.execute("SELECT pg_notify($1, $2)", &[&REVOCATION_CHANNEL, &payload])
        .await?;
    Ok(())
}

pub async fn active_count<C: GenericClient>(c: &C) -> Result<i64, AuthError> {
    Ok(c.query_one(
        "SELECT count(*) FROM auth.token_blacklist WHERE expires_at > now()",
        &[],
    )
    .await?
    .try_get(0)?)
}
