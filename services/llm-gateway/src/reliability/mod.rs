//! What keeps one bad provider from hurting every caller: a circuit breaker per
//! provider+model, a concurrency limit per provider, and retry back-off with jitter.

pub mod breaker;
pub mod limiter;

pub use breaker::Breakers;
pub use limiter::Limits;
