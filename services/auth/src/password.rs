//! Password hashing: argon2id for new hashes; legacy bcrypt (`$2b$`) hashes still verify and
//! are flagged for re-hashing. Hashing is CPU-heavy by design, so it always runs on the
//! blocking pool, never on the async runtime — and never on every core at once: a burst of
//! logins (a brute-force storm, say) would otherwise take all the CPU and stall every other
//! request of the process. At most [`set_concurrency`] hashes run at a time (default: half the
//! cores, at least one); the rest wait their turn without holding anything else, and past
//! [`MAX_WAITING`] waiters a request is refused as busy instead of queueing without bound.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// Cost parameters. The floor is OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    pub const MINIMUM: HashCost = HashCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    fn params(&self) -> Result<Params, PasswordError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is malformed")]
    Malformed,
    #[error("blocking pool unavailable: {0}")]
    Pool(String),
    #[error("too many password checks waiting")]
    Busy,
}

/// Password checks that may wait for a hashing slot before new ones are refused.
pub const MAX_WAITING: usize = 1024;

static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Half the cores, at least one: hashing leaves the rest of the machine to everything else.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// How many hashes may run at once in this process (`AUTH_HASH_CONCURRENCY`). The first call
/// wins: the limit is per process, shared by every auth service it runs.
pub fn set_concurrency(n: usize) {
    let _ = SLOTS.set(tokio::sync::Semaphore::new(n.max(1)));
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn limited<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(default_concurrency()));
    let _permit = match slots.try_acquire() {
        Ok(p) => p,
        Err(_) => {
            if WAITING.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
                WAITING.fetch_sub(1, Ordering::Relaxed);
                return Err(PasswordError::Busy);
            }
            let p = slots.acquire().await;
            WAITING.fetch_sub(1, Ordering::Relaxed);
            p.map_err(|e| PasswordError::Pool(e.to_string()))?
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PasswordError::Pool(e.to_string()))?
}

/// Hashes `password` with argon2id at `cost`.
pub async fn hash(password: String, cost: HashCost) -> Result<String, PasswordError> {
    limited(move || hash_blocking(&password, cost)).await
}

pub fn hash_blocking(password: &str, cost: HashCost) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hash("no randomness".into()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params()?);
    let phc = hasher
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The hash is bcrypt or weaker than the current cost: store a new one.
    pub needs_rehash: bool,
}

/// Checks `password` against a stored hash (argon2 PHC or bcrypt).
pub async fn verify(
    password: String,
    stored: String,
    cost: HashCost,
) -> Result<Verified, PasswordError> {
    limited(move || verify_blocking(&password, &stored, cost)).await
}

pub fn verify_blocking(
    password: &str,
    stored: &str,
    cost: HashCost,
) -> Result<Verified, PasswordError> {
    if is_bcrypt(stored) {
        let ok = bcrypt::verify(password, stored).map_err(|_| PasswordError::Malformed)?;
        return Ok(Verified {
            ok,
            needs_rehash: true,
        });
    }
    let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::Malformed)?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let weaker = Params::try_from(&parsed)
        .map(|p| {
            parsed.algorithm.as_str() != "argon2id"
                || p.m_cost() < cost.memory_kib
                || p.t_cost() < cost.iterations
                || p.p_cost() < cost.parallelism
        })
        .unwrap_or(true);
    Ok(Verified {
        ok,
        needs_rehash: ok && weaker,
    })
}

/// Whether a configured hash (ADMIN_PASSWORD_HASH) is one we can verify.
pub fn is_supported_hash(stored: &str) -> bool {
    is_bcrypt(stored) || PasswordHash::new(stored).is_ok()
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let cost = HashCost::MINIMUM;
        let h = hash_blocking("correct horse", cost).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            verify_blocking("correct horse", &h, cost).unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!verify_blocking("wrong", &h, cost).unwrap().ok);
        let stronger = HashCost {
            memory_kib: 32 * 1024,
            ..cost
        };
        assert!(
            verify_blocking("correct horse", &h, stronger)
                .unwrap()
                .needs_rehash
        );
    }

    #[test]
    fn legacy_bcrypt_verifies_and_asks_for_rehash() {
        let h = bcrypt::hash("legacy pass", 4).unwrap();
        assert!(h.starts_with("$2b$"));
        let v = verify_blocking("legacy pass", &h, HashCost::MINIMUM).unwrap();
        assert_eq!(
            v,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(!verify_blocking("nope", &h, HashCost::MINIMUM).unwrap().ok);
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(verify_blocking("x", "not-a-hash", HashCost::MINIMUM).is_err());
        assert!(!is_supported_hash("plain"));
    }
}
