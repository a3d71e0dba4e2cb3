//! Sealing secrets at rest with AES-256-GCM under `GATHERING_MASTER_KEY`.
//!
//! Signing keys and provider API keys are stored sealed: `nonce (12 bytes) || ciphertext+tag`.
//! The associated data names what the secret is (for example `provider:openai`), so a sealed
//! value cannot be moved to another row and still open.

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::ConfigError;
use crate::config::Vars;
use crate::environment::Environment;

/// A development-only key, used when `GATHERING_MASTER_KEY` is unset outside production.
/// Anything sealed with it is readable by anyone with this source code.
const DEVELOPMENT_KEY: [u8; 32] = *b"gathering-development-master-key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this master key")]
    WrongKey,
    #[error("system random generator failed")]
    Random,
}

#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    pub is_development_key: bool,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("is_development_key", &self.is_development_key)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Reads `GATHERING_MASTER_KEY`: 32 bytes as 64 hex characters or base64. Unset is allowed
    /// only outside production, with a fixed development key.
    pub fn from_vars(vars: &impl Vars, env: Environment) -> Result<Self, ConfigError> {
        const VAR: &str = "GATHERING_MASTER_KEY";
        match vars.get(VAR) {
            Some(raw) => Self::parse(raw.trim()).map_err(|reason| ConfigError::new(VAR, reason)),
            None if env == Environment::Production => Err(ConfigError::new(
                VAR,
                "is required in production (32 bytes, hex or base64)",
            )),
            None => Ok(Self {
                key: DEVELOPMENT_KEY,
                is_development_key: true,
            }),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(raw).map_err(|e| e.to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| "expected 32 bytes as 64 hex characters or base64".to_string())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "expected exactly 32 bytes (64 hex characters or base64)".to_string())?;
        Ok(Self {
            key,
            is_development_key: false,
        })
    }

    /// The raw key, for deriving purpose-bound keys (service tokens); never logged.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key always makes a valid AES-256 key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key).expect("32-byte AES key"))
    }

    /// Encrypts `plaintext`, binding it to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut buf = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut buf = body.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn round_trip_and_context_binding() {
        let key = MasterKey::parse(&"11".repeat(32)).unwrap();
        let sealed = key.seal("provider:openai", b"sk-123").unwrap();
        assert_ne!(&sealed[12..], b"sk-123");
        assert_eq!(key.open("provider:openai", &sealed).unwrap(), b"sk-123");
        assert!(matches!(
            key.open("provider:anthropic", &sealed),
            Err(SealError::WrongKey)
        ));
        let other = MasterKey::parse(&"22".repeat(32)).unwrap();
        assert!(other.open("provider:openai", &sealed).is_err());
        assert!(matches!(key.open("x", b"short"), Err(SealError::Malformed)));
    }

    #[test]
    fn production_requires_a_key() {
        let empty: HashMap<String, String> = HashMap::new();
        assert!(MasterKey::from_vars(&empty, Environment::Production).is_err());
        assert!(
            MasterKey::from_vars(&empty, Environment::Development)
                .unwrap()
                .is_development_key
        );
        let bad: HashMap<String, String> =
            [("GATHERING_MASTER_KEY".to_string(), "abc".to_string())].into();
        let err = MasterKey::from_vars(&bad, Environment::Development).unwrap_err();
        assert_eq!(err.var, "GATHERING_MASTER_KEY");
    }
}
