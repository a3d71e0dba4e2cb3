//! `auth.refresh_tokens`: rotating refresh tokens in families.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;

use crate::error::AuthError;

pub struct NewRefresh<'a> {
    pub hash: &'a [u8],
    pub family: uuid::Uuid,
    pub user_id: &'a str,
    pub parent_id: Option<i64>,
    pub ttl_secs: i64,
    pub access_jti: &'a str,
    pub access_expires_at: DateTime<Utc>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<IpAddr>,
}

pub async fn insert<C: GenericClient>(c: &C, t: &NewRefresh<'_>) -> Result<i64, AuthError> {
    let row = c
        .query_one(
            "INSERT INTO auth.refresh_tokens \
                 (token_hash, family_id, user_id, parent_id, expires_at, access_jti, \
                  access_expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, now() + $5::int8 * interval '1 second', $6, $7, $8, $9) \
             RETURNING id",
            &[
                &t.hash,
                &t.family,
                &t.user_id,
                &t.parent_id,
                &t.ttl_secs,
                &t.access_jti,
                &t.access_expires_at,
                &t.user_agent,
                &t.ip,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// A refresh token, locked for the rest of the transaction.
pub struct Found {
    pub id: i64,
    pub family: uuid::Uuid,
    pub user_id: String,
    pub used: bool,
    pub revoked: bool,
    pub expired: bool,
}

pub async fn find_for_update<C: GenericClient>(
    c: &C,
    hash: &[u8],
) -> Result<Option<Found>, AuthError> {
    let row = c
        .query_opt(
            "SELECT id, family_id, user_id, used_at IS NOT NULL, revoked_at IS NOT NULL, \
                    expires_at <= now() \
             FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            &[&hash],
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Found {
        id: r.try_get(0)?,
        family: r.try_get(1)?,
        user_id: r.try_get(2)?,
        used: r.try_get(3)?,
        revoked: r.try_get(4)?,
        expired: r.try_get(5)?,
    }))
}

pub async fn mark_used<C: GenericClient>(c: &C, id: i64) -> Result<(), AuthError> {
    c.execute(
        "UPDATE auth.refresh_tokens SET used_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}

/// A still-valid access token issued with a revoked refresh token.
pub struct AccessToRevoke {
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// Revokes every live token of a family; returns the access tokens they issued that have
/// not expired, so they can be revoked too.
pub async fn revoke_family<C: GenericClient>(
    c: &C,
    family: uuid::Uuid,
    reason: &str,
) -> Result<Vec<AccessToRevoke>, AuthError> {
    let rows = c
        .query(
            "WITH revoked AS ( \
                 UPDATE auth.refresh_tokens SET revoked_at = now(), revoked_reason = $2 \
                 WHERE family_id = $1 AND revoked_at IS NULL RETURNING id) \
             SELECT access_jti, access_expires_at FROM auth.refresh_tokens \
             WHERE family_id = $1 AND access_jti IS NOT NULL AND access_expires_at > now()",
            &[&family, &reason],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(AccessToRevoke {
                jti: r.try_get(0)?,
                expires_at: r.try_get(1)?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?)
}

pub async fn family_of<C: GenericClient>(
    c: &C,
    hash: &[u8],
    user_id: &str,
) -> Result<Option<uuid::Uuid>, AuthError> {
    let row = c
        .query_opt(
            "SELECT family_id FROM auth.refresh_tokens WHERE token_hash = $1 AND user_id = $2",
            &[&hash, &user_id],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Revokes every refresh token of a user; returns how many.
pub async fn revoke_user<C: GenericClient>(
    c: &C,
    user_id: &str,
    reason: &str,
) -> Result<u64, AuthError> {
    Ok(c.execute(
        "UPDATE auth.refresh_tokens SET revoked_at = now(), revoked_reason = $2 \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()",
        &[&user_id, &reason],
    )
    .await?)
}
