//! Service-to-service credentials: short-lived tokens that every internal gRPC call carries.
//!
//! The network between services is not a trust boundary, so the auth service and the gateway
//! must know that a call comes from another GatheRing process, not from anything that can reach
//! their ports. Every service already holds `GATHERING_MASTER_KEY`; an HMAC-SHA256 key derived
//! from it (HKDF, with its own label, so it can never be confused with the sealing key) signs
//! tokens of the form `gst1.<caller>.<expiry unix seconds>.<base64url MAC>`.
//!
//! Tokens live [`TOKEN_TTL`]; a caller re-mints when less than a third of that is left, so a
//! captured token is worth minutes, and minting costs one HMAC per few minutes per client.
//! Verification is one HMAC, compared in constant time by `ring`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{hkdf, hmac};

use crate::seal::MasterKey;

/// The metadata key internal gRPC calls carry the token in.
pub const METADATA_KEY: &str = "x-gathering-service-token";

/// How long a minted token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);

/// Tokens claiming to live longer than this are refused (a clock far ahead, or a forgery
/// attempt with a long expiry).
const MAX_FUTURE: Duration = Duration::from_secs(600);

const PREFIX: &str = "gst1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceTokenError {
    #[error("missing service credential")]
    Missing,
    #[error("malformed service credential")]
    Malformed,
    #[error("service credential expired")]
    Expired,
    #[error("invalid service credential")]
    Invalid,
}

/// The key that mints and verifies service tokens.
#[derive(Clone)]
pub struct ServiceKey {
    key: hmac::Key,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(***)")
    }
}

struct HmacLen;

impl hkdf::KeyType for HmacLen {
    fn len(&self) -> usize {
        32
    }
}

impl ServiceKey {
    /// Derives the service-token key from the master key.
    pub fn derive(master: &MasterKey) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"gathering/service-token/v1");
        let prk = salt.extract(master.bytes());
        let mut raw = [0u8; 32];
        // Expanding 32 bytes from SHA-256 never exceeds HKDF's limit (255 × 32).
        if let Ok(okm) = prk.expand(&[b"hmac-sha256"], HmacLen) {
            let _ = okm.fill(&mut raw);
        }
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &raw),
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// A token for `caller` (a service name: letters, digits, `-`), valid [`TOKEN_TTL`].
    pub fn mint(&self, caller: &str) -> String {
        self.mint_at(caller, Self::now() + TOKEN_TTL.as_secs())
    }

    fn mint_at(&self, caller: &str, expires: u64) -> String {
        let body = format!("{PREFIX}.{caller}.{expires}");
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks a token; returns the caller's service name.
    pub fn verify<'a>(&self, token: &'a str) -> Result<&'a str, ServiceTokenError> {
        if token.is_empty() {
            return Err(ServiceTokenError::Missing);
        }
        if token.len() > 256 {
            return Err(ServiceTokenError::Malformed);
        }
        let (body, tag) = token.rsplit_once('.').ok_or(ServiceTokenError::Malformed)?;
        let mut parts = body.split('.');
        let (Some(PREFIX), Some(caller), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ServiceTokenError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| ServiceTokenError::Malformed)?;
        hmac::verify(&self.key, body.as_bytes(), &tag).map_err(|_| ServiceTokenError::Invalid)?;
        let expires: u64 = expires.parse().map_err(|_| ServiceTokenError::Malformed)?;
        let now = Self::now();
        if expires <= now {
            return Err(ServiceTokenError::Expired);
        }
        if expires > now + MAX_FUTURE.as_secs() {
            return Err(ServiceTokenError::Invalid);
        }
        Ok(caller)
    }
}

/// A caller's cached token, re-minted when a third of its life is left.
pub struct TokenSource {
    key: ServiceKey,
    caller: String,
    cached: Mutex<Option<(String, u64)>>,
}

impl TokenSource {
    pub fn new(key: ServiceKey, caller: impl Into<String>) -> Self {
        Self {
            key,
            caller: caller.into(),
            cached: Mutex::new(None),
        }
    }

    /// The current token.
    pub fn token(&self) -> String {
        let now = ServiceKey::now();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, expires)) = cached.as_ref()
            && *expires > now + TOKEN_TTL.as_secs() / 3
        {
            return token.clone();
        }
        let expires = now + TOKEN_TTL.as_secs();
        let token = self.key.mint_at(&self.caller, expires);
        *cached = Some((token.clone(), expires));
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ServiceKey {
        ServiceKey::derive(&MasterKey::parse(&hex::encode([byte; 32])).unwrap())
    }

    #[test]
    fn a_minted_token_verifies_and_names_its_caller() {
        let k = key(1);
        let t = k.mint("edge");
        assert_eq!(k.verify(&t), Ok("edge"));
    }

    #[test]
    fn another_master_key_expiry_and_tampering_are_refused() {
        let t = key(1).mint("edge");
        assert_eq!(key(2).verify(&t), Err(ServiceTokenError::Invalid));
        let expired = key(1).mint_at("edge", ServiceKey::now() - 1);
        assert_eq!(key(1).verify(&expired), Err(ServiceTokenError::Expired));
        let far = key(1).mint_at("edge", ServiceKey::now() + 86_400);
        assert_eq!(key(1).verify(&far), Err(ServiceTokenError::Invalid));
        let renamed = t.replacen("edge", "auth", 1);
        assert_eq!(key(1).verify(&renamed), Err(ServiceTokenError::Invalid));
        assert_eq!(key(1).verify(""), Err(ServiceTokenError::Missing));
        assert_eq!(key(1).verify("x.y"), Err(ServiceTokenError::Malformed));
    }

    #[test]
    fn the_source_reuses_its_token_until_it_ages() {
        let s = TokenSource::new(key(3), "executor");
        assert_eq!(s.token(), s.token());
        assert_eq!(key(3).verify(&s.token()), Ok("executor"));
    }
}
