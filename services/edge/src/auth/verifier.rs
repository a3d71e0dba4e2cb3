//! Local verification of access tokens: signature (Ed25519, by `kid`), issuer, audience,
//! expiry, then the revocation set. A token verified once under the current key set is
//! remembered (`verified`): later requests with it skip the signature check, never the expiry
//! or revocation checks.
//!
//! Public keys come from the auth service. The edge may start before auth listens, so a
//! background task ([`Verifier::keep_fetching`]) retries with back-off until the first fetch
//! succeeds, and the edge reports not-ready until then. Afterwards a token naming an unknown
//! key (rotation) triggers a refetch whenever the last *successful* fetch is older than
//! [`MIN_REFETCH`]: failed attempts never block the next one, they are only spaced by
//! [`MIN_ATTEMPT_GAP`] so a flood of bad tokens cannot flood the auth service.

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
use super::verified::Verified;

/// A key set younger than this is not refetched for an unknown kid.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// Shortest gap between two fetch attempts.
const MIN_ATTEMPT_GAP: Duration = Duration::from_millis(200);

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
    /// Tokens verified under these keys (a new key set starts with none).
    verified: Verified,
}

#[derive(Default)]
struct Fetches {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
}

pub struct Verifier {
    auth: AuthClient,
    keys: RwLock<Option<Arc<KeySet>>>,
    fetches: Mutex<Fetches>,
    pub revocations: Arc<Revocations>,
}

impl Verifier {
    pub fn new(auth: AuthClient, revocations: Arc<Revocations>) -> Self {
        Self {
            auth,
            keys: RwLock::new(None),
            fetches: Mutex::new(Fetches::default()),
            revocations,
        }
    }

    /// Whether public keys have been loaded (tokens can be verified).
    pub fn has_keys(&self) -> bool {
        self.key_set().is_some()
    }

    /// Fetches the keys until a fetch succeeds, with back-off (100 ms doubling to 5 s); then
    /// calls `on_loaded`. Returns early on `shutdown`.
    pub async fn keep_fetching(
        self: Arc<Self>,
        shutdown: gathering_core::Shutdown,
        on_loaded: impl FnOnce(),
    ) {
        let backoff = gathering_core::backoff::Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            jitter: 0.2,
        };
        let mut attempt = 0;
        while !self.has_keys() {
            attempt += 1;
            match self.fetch().await {
                Ok(()) => break,
                Err(e) if attempt == 1 || attempt % 20 == 0 => {
                    tracing::warn!(error = %e, attempt, "signing keys not available yet; retrying");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.delay(attempt)) => {}
                _ = shutdown.wait() => return,
            }
        }
        tracing::info!("signing keys loaded");
        on_loaded();
    }

    async fn fetch(&self) -> Result<(), tonic::Status> {
        self.fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_attempt = Some(Instant::now());
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
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(KeySet {
            keys,
            validation,
            verified: Verified::default(),
        }));
        self.fetches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_success = Some(Instant::now());
        Ok(())
    }

    fn key_set(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn may_refetch(&self) -> bool {
        let f = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
        f.last_success.is_none_or(|t| t.elapsed() >= MIN_REFETCH)
            && f.last_attempt
                .is_none_or(|t| t.elapsed() >= MIN_ATTEMPT_GAP)
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
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = match set.verified.get(token, now) {
            Some(claims) => claims,
            None => {
                gathering_core::jwt_crypto::ensure_installed();
                let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &set.validation)
                    .map_err(|_| VerifyError::Invalid)?
                    .claims;
                set.verified.insert(token, &claims, now);
                claims
            }
        };
        // Revocation is checked on every request, remembered token or not.
        if self.revocations.is_revoked(&claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }
}
