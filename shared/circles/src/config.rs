//! Settings from the environment (the edge and the executor read the same ones).

use std::time::Duration;

use gathering_core::ConfigError;
use gathering_core::config::{self, Vars};

#[derive(Debug, Clone)]
pub struct CirclesConfig {
    /// `CONVERSATION_START_WAIT_SECONDS` (120): how long `POST /conversations/{id}/start`,
    /// `/advance` and `/quick` wait for the run before answering its current state.
    pub start_wait: Duration,
    /// `CONVERSATION_TURN_TIMEOUT_SECONDS` (60): a participant who has not answered by then
    /// is recorded as having timed out and the conversation moves on (A3).
    pub turn_timeout: Duration,
    /// `CIRCLE_MAX_REVIEW_ROUNDS` (3): rejections after which a task escalates, for circles
    /// created without their own `max_review_rounds`.
    pub max_review_rounds: i32,
    /// `CIRCLE_REVIEW_ATTEMPTS` (3): model calls an automatic review may take to produce a
    /// verdict that matches the schema before it is left to a human.
    pub review_attempts: u32,
}

impl Default for CirclesConfig {
    fn default() -> Self {
        Self {
            start_wait: Duration::from_secs(120),
            turn_timeout: Duration::from_secs(60),
            max_review_rounds: 3,
            review_attempts: 3,
        }
    }
}

impl CirclesConfig {
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let wait: u64 = config::parse_or(vars, "CONVERSATION_START_WAIT_SECONDS", 120)?;
        if wait > 3600 {
            return Err(ConfigError::new(
                "CONVERSATION_START_WAIT_SECONDS",
                "must be at most 3600",
            ));
        }
        let turn: u64 = config::parse_or(vars, "CONVERSATION_TURN_TIMEOUT_SECONDS", 60)?;
        if !(1..=3600).contains(&turn) {
            return Err(ConfigError::new(
                "CONVERSATION_TURN_TIMEOUT_SECONDS",
                "must be 1 to 3600",
            ));
        }
        let rounds: i32 = config::parse_or(vars, "CIRCLE_MAX_REVIEW_ROUNDS", 3)?;
        if !(1..=20).contains(&rounds) {
            return Err(ConfigError::new(
                "CIRCLE_MAX_REVIEW_ROUNDS",
                "must be 1 to 20",
            ));
        }
        let attempts: u32 = config::parse_or(vars, "CIRCLE_REVIEW_ATTEMPTS", 3)?;
        if !(1..=10).contains(&attempts) {
            return Err(ConfigError::new(
                "CIRCLE_REVIEW_ATTEMPTS",
                "must be 1 to 10",
            ));
        }
        Ok(Self {
            start_wait: Duration::from_secs(wait),
            turn_timeout: Duration::from_secs(turn),
            max_review_rounds: rounds,
            review_attempts: attempts,
        })
    }
}
