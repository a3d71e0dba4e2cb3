//! Local verification of access tokens: signature (Ed25519, by `kid`), issuer, audience,
//! expiry, then the revocation set. Public keys come from the auth service once and again
//! only when a token names a key not seen yet (rotation), at most every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gathering_core::claims::AccessClaims;
use gathering_proto::v1::GetSigningKeysRequest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::client::AuthClient;
use super::revocations::Revocations;

const MIN_REFETCH: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid or expired token")]
    Invalid,
    #[error("token revoked")]
    Revoked,
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

pub struct Verifier {
    auth: AuthClient,
    keys: RwLock<Option<Arc<KeySet>>>,
    last_fetch: Mutex<Option<Instant>>,
    pub revocations: Arc<Revocations>,
}

impl Verifier {
    pub fn new(auth: AuthClient, revocations: Arc<Revocations>) -> Self {
        Self {
            auth,
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
            revocations,
        }
    }

    /// Fetches the public keys now (at start-up; failures are retried on demand).
    pub async fn prefetch(&self) {
        if let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "signing keys not available yet; will retry on demand");
        }
    }

    async fn fetch(&self) -> Result<(), tonic::Status> {
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let reply = self
            .auth
            .clone()
            .get_signing_keys(GetSigningKeysRequest {})
            .await?
            .into_inner();
        let mut keys = HashMap::new();
        for k in reply.keys.iter().filter(|k| k.algorithm == "EdDSA") {
            if let Ok(key) = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&k.public_key))
            {
                keys.insert(k.kid.clone(), key);
            }
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[reply.issuer.as_str()]);
        validation.set_audience(&[reply.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 0;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(KeySet { keys, validation }));
        Ok(())
    }

    fn key_set(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn may_refetch(&self) -> bool {
        self.last_fetch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|t| t.elapsed() >= MIN_REFETCH)
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if token.len() > 4096 {
            return Err(VerifyError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Invalid);
        }
        let kid = header.kid.ok_or(VerifyError::Malformed)?;
        let mut set = self.key_set();
        if set.as_ref().is_none_or(|s| !s.keys.contains_key(&kid)) && self.may_refetch() {
            if let Err(e) = self.fetch().await {
                tracing::warn!(error = %e, "fetching signing keys failed");
            }
            set = self.key_set();
        }
        let set = set.ok_or(VerifyError::UnknownKey)?;
        let key = set.keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &set.validation)
            .map_err(|_| VerifyError::Invalid)?;
        if self.revocations.is_revoked(&data.claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(data.claims)
    }
}
