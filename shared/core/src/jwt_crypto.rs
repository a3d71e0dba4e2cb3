//! The cryptography behind `jsonwebtoken`: Ed25519 (EdDSA) with `ring`.
//!
//! Why this exists: `jsonwebtoken` ships two back-ends, RustCrypto (which pulls RSA, two NIST
//! curves, `ed25519-dalek` and a second generation of the digest/rand crates) and aws-lc (a C
//! build). Our tokens are only ever EdDSA, and `ring` is already the workspace's crypto crate,
//! so the signer and verifier here are the whole provider. Any other algorithm is refused with
//! `InvalidAlgorithm` — which is also what the token verifiers demand.
//!
//! `jsonwebtoken` panics when no provider is installed, so every call site goes through
//! [`ensure_installed`] first (cheap after the first call).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Installs the provider for this process; later calls (and a provider installed earlier) are
/// fine, so call it before any `jsonwebtoken::encode`/`decode`.
pub fn ensure_installed() {
    // `Err` means a provider is installed already: ours, from an earlier call.
    let _ = PROVIDER.install_default();
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    if *alg != Algorithm::EdDSA || key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    // Accepts PKCS#8 v1 and v2 documents (ring generates v2; keys stored by older versions
    // of the auth service may be v1).
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
        .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(EdDsaSigner(pair)))
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    if *alg != Algorithm::EdDSA || key.family() != AlgorithmFamily::Ed {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let public = key.try_get_as_bytes()?;
    if public.len() != 32 {
        return Err(ErrorKind::InvalidEddsaKey.into());
    }
    Ok(Box::new(EdDsaVerifier(public.to_vec())))
}

struct EdDsaSigner(Ed25519KeyPair);

impl Signer<Vec<u8>> for EdDsaSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}

impl JwtSigner for EdDsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdDsaVerifier(Vec<u8>);

impl Verifier<Vec<u8>> for EdDsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for EdDsaVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation, decode, encode};
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn keys() -> (EncodingKey, DecodingKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
        let x = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            pair.public_key().as_ref(),
        );
        (
            EncodingKey::from_ed_der(pkcs8.as_ref()),
            DecodingKey::from_ed_components(&x).expect("public key"),
        )
    }

    #[test]
    fn eddsa_tokens_round_trip_and_tampering_is_refused() {
        ensure_installed();
        let (enc, dec) = keys();
        let claims = Claims {
            sub: "u1".into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
        };
        let token = encode(&Header::new(Algorithm::EdDSA), &claims, &enc).expect("sign");
        let back =
            decode::<Claims>(&token, &dec, &Validation::new(Algorithm::EdDSA)).expect("verify");
        assert_eq!(back.claims, claims);

        // A flipped signature byte and another key are both refused.
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        assert!(decode::<Claims>(&bad, &dec, &Validation::new(Algorithm::EdDSA)).is_err());
        let (_, other) = keys();
        assert!(decode::<Claims>(&token, &other, &Validation::new(Algorithm::EdDSA)).is_err());
    }

    #[test]
    fn other_algorithms_are_refused() {
        ensure_installed();
        let key = EncodingKey::from_secret(b"secret");
        let err = encode(&Header::new(Algorithm::HS256), &"x", &key).expect_err("refused");
        assert!(matches!(err.kind(), ErrorKind::InvalidAlgorithm));
    }
}
