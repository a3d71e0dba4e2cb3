//! Who a call is made for. The edge is only a caller with a service credential; calls that act
//! for a user (reading or changing an account, logging out, administration) must also carry
//! that user's access token, which this service verifies itself: signature with its own
//! published keys, issuer, audience, expiry and revocation. So a leaked service credential, or a
//! compromised edge, cannot administer users or read accounts without an admin's token.
//!
//! In no-auth development mode (`DISABLE_AUTH=true` with `GATHERING_ENV=development`, refused
//! otherwise) a call without a user token acts as the local developer, an admin.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gathering_core::claims::AccessClaims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tonic::metadata::MetadataMap;

use super::AuthApi;
use crate::error::AuthError;

/// Metadata key of the acting user's access token (the edge's `x-gathering-user-token`).
pub const USER_TOKEN_KEY: &str = "x-gathering-user-token";

/// How long verifying keys are reused before they are read again.
const KEY_CACHE: Duration = Duration::from_secs(30);

/// The acting user of a call.
#[derive(Debug, Clone)]
pub enum Acting {
    User(AccessClaims),
    /// The local developer of a no-auth development stack.
    Developer,
}

impl Acting {
    pub fn is_admin(&self) -> bool {
        match self {
            Acting::User(c) => c.is_admin(),
            Acting::Developer => true,
        }
    }

    pub fn user_id(&self) -> &str {
        match self {
            Acting::User(c) => &c.sub,
            Acting::Developer => "dev",
        }
    }

    /// The acting user is `user_id`, or an admin.
    pub fn may_act_for(&self, user_id: &str) -> bool {
        self.is_admin() || self.user_id() == user_id
    }

    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::Forbidden("Admin access required".into()))
        }
    }
}

/// Verifying keys by kid, reloaded every [`KEY_CACHE`] or on an unknown kid.
#[derive(Default)]
pub struct KeyCache {
    inner: RwLock<Option<(Instant, HashMap<String, DecodingKey>)>>,
}

impl AuthApi {
    async fn decoding_key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cached = self
                .key_cache
                .inner
                .read()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, keys)) = cached.as_ref()
                && at.elapsed() < KEY_CACHE
                && let Some(k) = keys.get(kid)
            {
                return Ok(k.clone());
            }
        }
        let mut keys = HashMap::new();
        for k in crate::keys::public_keys(&self.pool).await? {
            if let Ok(key) = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&k.public_key))
            {
                keys.insert(k.kid, key);
            }
        }
        let found = keys.get(kid).cloned();
        *self
            .key_cache
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), keys));
        found.ok_or(AuthError::InvalidToken("Invalid or expired token"))
    }

    /// The acting user of a request (see the module doc).
    pub(crate) async fn acting(&self, metadata: &MetadataMap) -> Result<Acting, AuthError> {
        let token = metadata
            .get(USER_TOKEN_KEY)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            if self.config.disable_auth {
                return Ok(Acting::Developer);
            }
            return Err(AuthError::InvalidToken(
                "This call needs the user's access token",
            ));
        };
        let invalid = || AuthError::InvalidToken("Invalid or expired token");
        if token.len() > 4096 {
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let key = self.decoding_key(&header.kid.ok_or_else(invalid)?).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[self.config.issuer.as_str()]);
        validation.set_audience(&[self.config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 0;
        gathering_core::jwt_crypto::ensure_installed();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|_| invalid())?
            .claims;
        let issued_ms = if claims.iat_ms > 0 {
            claims.iat_ms
        } else {
            claims.iat * 1000
        };
        let db = self.pool.get().await?;
        let revoked: bool = db
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM auth.token_blacklist WHERE token_hash = $1) \
                     OR EXISTS (SELECT 1 FROM auth.user_revocations WHERE user_id = $2 \
                                AND revoked_before >= to_timestamp($3::float8 / 1000))",
                &[&claims.jti, &claims.sub, &(issued_ms as f64)],
            )
            .await?
            .try_get(0)?;
        if revoked {
            return Err(AuthError::InvalidToken("Token revoked"));
        }
        Ok(Acting::User(claims))
    }
}
