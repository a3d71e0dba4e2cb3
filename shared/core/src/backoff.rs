//! Retry delays: exponential with jitter and a cap. The one back-off of the project: job
//! retries (queue), provider retries (gateway), reconnects (LISTEN, signing-key fetches) and
//! restarts of supervised children all use it, each with its own base, cap and jitter.

use std::time::Duration;

use rand::RngExt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Fraction of the delay added or removed at random (0.2 = ±20 %), so that jobs failing
    /// together do not retry together.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay without jitter before retrying after failed attempt `attempt` (1-based):
    /// `base × 2^(attempt−1)`, at most `cap`.
    pub fn nominal(&self, attempt: i32) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
        self.base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.cap)
    }

    /// The delay with jitter applied.
    pub fn delay(&self, attempt: i32) -> Duration {
        let nominal = self.nominal(attempt).as_secs_f64();
        let spread = nominal * self.jitter.clamp(0.0, 1.0);
        let jittered = if spread > 0.0 {
            nominal + rand::rng().random_range(-spread..=spread)
        } else {
            nominal
        };
        Duration::from_secs_f64(jittered.max(0.0)).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            jitter: 0.0,
        };
        let delays: Vec<u128> = (1..=6).map(|a| b.nominal(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(3), Duration::from_millis(400));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(3600),
            jitter: 0.2,
        };
        for _ in 0..1000 {
            let d = b.delay(1).as_secs_f64();
            assert!((8.0..=12.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let b = Backoff::default();
        assert_eq!(b.nominal(i32::MAX), b.cap);
        assert_eq!(b.nominal(0), b.base);
    }
}
