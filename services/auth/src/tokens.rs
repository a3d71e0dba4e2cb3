//! Issuing tokens: Ed25519-signed JWT access tokens, and opaque refresh tokens stored hashed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use gathering_core::claims::AccessClaims;
use jsonwebtoken::{Algorithm, Header};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::AuthError;
use crate::keys::SigningKey;

/// Who a token is for.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user_id: String,
    pub email: String,
    pub role: String,
}

pub struct IssuedAccess {
    pub token: String,
    pub claims: AccessClaims,
}

/// Signs an access token for `subject`, valid `ttl_secs`.
pub fn issue_access(
    key: &SigningKey,
    issuer: &str,
    audience: &str,
    ttl_secs: i64,
    subject: &Subject,
) -> Result<IssuedAccess, AuthError> {
    let now_ms = Utc::now().timestamp_millis();
    let now = now_ms / 1000;
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: subject.user_id.clone(),
        email: subject.email.clone(),
        role: subject.role.clone(),
        iat: now,
        iat_ms: now_ms,
        exp: now + ttl_secs,
        jti: uuid::Uuid::new_v4().simple().to_string(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    gathering_core::jwt_crypto::ensure_installed();
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
    Ok(IssuedAccess { token, claims })
}

/// A new opaque refresh token (256 random bits) and the hash stored for it.
pub fn new_refresh_token() -> Result<(String, Vec<u8>), AuthError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Internal("no randomness".into()))?;
    let token = format!("grt_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_token(&token);
    Ok((token, hash))
}

/// SHA-256 of a refresh token: what the database holds, so a leaked table yields no tokens.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}
