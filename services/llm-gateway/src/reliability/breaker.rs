//! Circuit breakers, one per provider+model.
//!
//! Closed: calls go through; `LLM_BREAKER_FAILURES` consecutive failures (connection errors,
//! timeouts, 5xx, malformed answers — not the caller's mistakes, not 429) open it. Open: calls
//! fail at once with `CircuitOpen` (and a fallback model is tried) for `LLM_BREAKER_COOLDOWN_MS`.
//! Then half-open: one probe call is let through; its success closes the circuit, its failure
//! opens it again. A probe that never reports (its caller went away) is replaced after another
//! cooldown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::GatewayError;

/// Entries kept at most; closed circuits are forgotten first.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { since: Instant },
}

/// What the breaker of one key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

pub struct Breakers {
    circuits: Mutex<HashMap<String, Circuit>>,
    failures: u32,
    cooldown: Duration,
}

impl Breakers {
    pub fn new(failures: u32, cooldown: Duration) -> Breakers {
        Breakers {
            circuits: Mutex::new(HashMap::new()),
            failures: failures.max(1),
            cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Circuit>> {
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call to `key` go ahead?
    pub fn admit(&self, key: &str) -> Result<(), GatewayError> {
        let mut map = self.lock();
        let Some(circuit) = map.get_mut(key) else {
            return Ok(());
        };
        let now = Instant::now();
        match *circuit {
            Circuit::Closed { .. } => Ok(()),
            Circuit::Open { until } if now >= until => {
                *circuit = Circuit::HalfOpen { since: now };
                Ok(())
            }
            Circuit::HalfOpen { since } if now.duration_since(since) >= self.cooldown => {
                *circuit = Circuit::HalfOpen { since: now };
                Ok(())
            }
            Circuit::Open { .. } | Circuit::HalfOpen { .. } => {
                Err(GatewayError::CircuitOpen(key.to_owned()))
            }
        }
    }

    pub fn success(&self, key: &str) {
        let mut map = self.lock();
        if map.contains_key(key) {
            map.remove(key);
        }
    }

    pub fn failure(&self, key: &str) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
            map.retain(|_, c| !matches!(c, Circuit::Closed { .. }));
        }
        let now = Instant::now();
        let circuit = map
            .entry(key.to_owned())
            .or_insert(Circuit::Closed { failures: 0 });
        *circuit = match *circuit {
            Circuit::Closed { failures } if failures + 1 >= self.failures => {
                tracing::warn!(model = key, "circuit opened");
                metrics::counter!("llm_gateway_circuit_opened_total").increment(1);
                Circuit::Open {
                    until: now + self.cooldown,
                }
            }
            Circuit::Closed { failures } => Circuit::Closed {
                failures: failures + 1,
            },
            Circuit::HalfOpen { .. } => {
                tracing::warn!(model = key, "probe failed; circuit open again");
                Circuit::Open {
                    until: now + self.cooldown,
                }
            }
            open @ Circuit::Open { .. } => open,
        };
    }

    pub fn state(&self, key: &str) -> BreakerState {
        match self.lock().get(key) {
            None | Some(Circuit::Closed { .. }) => BreakerState::Closed,
            Some(Circuit::Open { .. }) => BreakerState::Open,
            Some(Circuit::HalfOpen { .. }) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_then_half_opens_then_closes() {
        let b = Breakers::new(2, Duration::from_millis(30));
        b.failure("p/m");
        assert!(b.admit("p/m").is_ok());
        b.failure("p/m");
        assert_eq!(b.state("p/m"), BreakerState::Open);
        assert!(matches!(b.admit("p/m"), Err(GatewayError::CircuitOpen(_))));
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit("p/m").is_ok(), "one probe");
        assert!(b.admit("p/m").is_err(), "only one probe");
        b.failure("p/m");
        assert_eq!(b.state("p/m"), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit("p/m").is_ok());
        b.success("p/m");
        assert_eq!(b.state("p/m"), BreakerState::Closed);
        assert!(b.admit("p/m").is_ok());
        assert!(b.admit("other").is_ok());
    }
}
