//! Signing keys: Ed25519, private parts sealed with the master key in `auth.signing_keys`.
//!
//! The newest activated key signs; every key that has not expired verifies. Rotation creates a
//! new key and retires the old one, which keeps verifying for an overlap window (the access
//! token lifetime plus a margin) so tokens signed just before the rotation stay valid.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_core::seal::MasterKey;
use gathering_db::Pool;
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::error::AuthError;

/// Serialises key creation between auth instances starting together ("GATHKEYS").
const KEY_LOCK: i64 = 0x4741_5448_4B45_5953;

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub activated_at: DateTime<Utc>,
}

/// A public key as published to edges.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The current signer, swapped on rotation.
#[derive(Clone)]
pub struct Keys {
    signer: Arc<RwLock<SigningKey>>,
}

impl Keys {
    pub fn current(&self) -> SigningKey {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Loads the signing key, creating the first one (or a rotated one when the current is older
/// than `rotate_after`).
pub async fn load_or_rotate(
    pool: &Pool,
    master: &MasterKey,
    rotate_after: Duration,
    overlap: Duration,
) -> Result<SigningKey, AuthError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&KEY_LOCK])
        .await?;
    let row = tx
        .query_opt(
            "SELECT kid, private_key_sealed, activated_at FROM auth.signing_keys \
             WHERE activated_at <= clock_timestamp() \
               AND (retires_at IS NULL OR retires_at > clock_timestamp()) \
             ORDER BY activated_at DESC LIMIT 1",
            &[],
        )
        .await?;
    let rotate_ms = rotate_after.as_millis().min(i64::MAX as u128) as i64;
    let current = match row {
        Some(r) => {
            let activated: DateTime<Utc> = r.try_get(2)?;
            let age = Utc::now()
                .signed_duration_since(activated)
                .num_milliseconds();
            if age < rotate_ms {
                Some((
                    r.try_get::<_, String>(0)?,
                    r.try_get::<_, Vec<u8>>(1)?,
                    activated,
                ))
            } else {
                None
            }
        }
        None => None,
    };
    let key = match current {
        Some((kid, sealed, activated_at)) => {
            let pkcs8 = master.open(&context(&kid), &sealed)?;
            SigningKey {
                kid,
                encoding: EncodingKey::from_ed_der(&pkcs8),
                activated_at,
            }
        }
        None => {
            let overlap_ms = overlap.as_millis().min(i64::MAX as u128) as i64;
            // Retire the old signer; it keeps verifying through the overlap window. Clock
            // time, not the transaction's start: another instance may have committed a key
            // while this transaction waited for the lock.
            tx.execute(
                "UPDATE auth.signing_keys SET retires_at = clock_timestamp(), \
                 expires_at = clock_timestamp() + $1::int8 * interval '1 millisecond' \
                 WHERE retires_at IS NULL",
                &[&overlap_ms],
            )
            .await?;
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| AuthError::Internal("key generation failed".into()))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| AuthError::Internal("generated key unreadable".into()))?;
            let kid = uuid::Uuid::new_v4().simple().to_string();
            let sealed = master.seal(&context(&kid), pkcs8.as_ref())?;
            let activated_at: DateTime<Utc> = tx
                .query_one(
                    "INSERT INTO auth.signing_keys (kid, public_key, private_key_sealed, activated_at) \
                     VALUES ($1, $2, $3, clock_timestamp()) RETURNING activated_at",
                    &[&kid, &pair.public_key().as_ref(), &sealed],
                )
                .await?
                .try_get(0)?;
            tracing::info!(kid, "signing key created");
            SigningKey {
                kid,
                encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                activated_at,
            }
        }
    };
    tx.commit().await?;
    Ok(key)
}

pub async fn start(
    pool: &Pool,
    master: &MasterKey,
    rotate_after: Duration,
    overlap: Duration,
) -> Result<Keys, AuthError> {
    let key = load_or_rotate(pool, master, rotate_after, overlap).await?;
    Ok(Keys {
        signer: Arc::new(RwLock::new(key)),
    })
}

/// Re-reads the signer (another instance may have rotated) and rotates when due.
pub async fn refresh(
    keys: &Keys,
    pool: &Pool,
    master: &MasterKey,
    rotate_after: Duration,
    overlap: Duration,
) -> Result<(), AuthError> {
    let key = load_or_rotate(pool, master, rotate_after, overlap).await?;
    *keys.signer.write().unwrap_or_else(|p| p.into_inner()) = key;
    Ok(())
}

/// Every key that still verifies.
pub async fn public_keys(pool: &Pool) -> Result<Vec<PublicKey>, AuthError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT kid, public_key, expires_at FROM auth.signing_keys \
             WHERE expires_at IS NULL OR expires_at > now() ORDER BY activated_at DESC",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(PublicKey {
                kid: r.try_get(0)?,
                public_key: r.try_get(1)?,
                expires_at: r.try_get(2)?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?)
}
