//! Retry delays: exponential back-off with full jitter (a random delay between zero and
//! `base * 2^attempt`, capped), so that callers failing together do not retry together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SEED: AtomicU64 = AtomicU64::new(0);

/// A cheap pseudo-random number (splitmix64); jitter needs spread, not secrecy.
fn next_random() -> u64 {
    let mut z = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    if z == 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        SEED.store(now | 1, Ordering::Relaxed);
        z = now;
    }
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Delay before retry number `retry` (0 for the first retry).
pub fn delay(retry: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .min(max);
    let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(next_random() % (nanos + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for retry in 0..10 {
            let ceiling = (base * 2u32.pow(retry)).min(max);
            for _ in 0..100 {
                assert!(delay(retry, base, max) <= ceiling);
            }
        }
        let spread: std::collections::HashSet<_> =
            (0..50).map(|_| delay(3, base, max).as_millis()).collect();
        assert!(spread.len() > 10, "jitter spreads the delays");
    }
}
