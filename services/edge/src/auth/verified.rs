//! Access tokens whose signature was checked recently, so that a client sending the same token
//! with every request pays for one Ed25519 verification (~56 µs of CPU with `ring`), not one
//! per request (a lookup is ~1 µs).
//!
//! What a hit skips is only the signature, issuer and audience checks, which cannot change for
//! a given token under a given key set: the set is owned by one [`KeySet`](super::verifier)
//! generation, so a refetched key set (rotation, a withdrawn key) starts empty. Expiry is checked
//! again on every hit, and revocation is checked by the caller after a hit exactly as after a
//! miss. Only tokens that passed verification are stored (a flood of bad tokens adds nothing),
//! keyed by their SHA-256, at most [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::sync::Mutex;

use gathering_core::claims::AccessClaims;
use ring::digest::{SHA256, digest};

/// Most tokens remembered; past it expired entries go, then (if still full) all of them.
pub const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

#[derive(Default)]
pub struct Verified {
    entries: Mutex<HashMap<Key, AccessClaims>>,
}

fn key(token: &str) -> Key {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    k
}

impl Verified {
    /// The claims of `token` if it was verified under this key set and has not expired at
    /// `now` (seconds since the epoch).
    pub fn get(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Same rule as the verifier's: expired once `exp` is in the past (no leeway).
        entries.get(&key(token)).filter(|c| c.exp >= now).cloned()
    }

    /// Remembers `claims`, which `token` was just verified to carry.
    pub fn insert(&self, token: &str, claims: &AccessClaims, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, c| c.exp >= now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key(token), claims.clone());
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "gathering".into(),
            aud: "gathering-api".into(),
            sub: "u1".into(),
            email: "u1@example.com".into(),
            role: "user".into(),
            iat: 0,
            iat_ms: 0,
            exp,
            jti: jti.into(),
        }
    }

    #[test]
    fn a_hit_is_the_same_token_and_not_expired() {
        let v = Verified::default();
        v.insert("token-a", &claims("a", 100), 50);
        assert_eq!(v.get("token-a", 60).map(|c| c.jti), Some("a".into()));
        assert_eq!(v.get("token-a", 100).map(|c| c.jti), Some("a".into()));
        assert!(v.get("token-a", 101).is_none(), "expired");
        assert!(v.get("token-b", 60).is_none(), "another token");
        assert!(v.get("token-a ", 60).is_none(), "a different string");
    }

    #[test]
    fn full_drops_expired_entries_first_then_everything() {
        let v = Verified::default();
        for i in 0..MAX_ENTRIES {
            let exp = if i % 2 == 0 { 10 } else { 1_000 };
            v.insert(&format!("t{i}"), &claims("x", exp), 0);
        }
        assert_eq!(v.len(), MAX_ENTRIES);
        v.insert("new", &claims("n", 1_000), 20);
        assert_eq!(v.len(), MAX_ENTRIES / 2 + 1, "the expired half went");
        for i in 0..MAX_ENTRIES {
            v.insert(&format!("u{i}"), &claims("y", 1_000), 20);
        }
        assert!(v.len() <= MAX_ENTRIES, "bounded: {}", v.len());
    }
}
