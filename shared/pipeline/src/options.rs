//! How a node runs, from its config: timeout, retry policy, circuit breaker settings and
//! failure handling. Validation reports a malformed option; the executor reads them the same
//! way, so a run never meets an option validation let through.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `timeout_seconds` | one attempt's limit | agent 300, others 60 (delay, approval and sub-pipeline: none; an approval's is its wait) |
//! | `retry.max_attempts` | attempts in total | the pipeline's `max_retries_per_node` (3) |
//! | `retry.backoff_base`, `retry.backoff_max` | wait `base × 2^(n−1)` seconds, at most `max` | the pipeline's (1, 60) |
//! | `retry.retry_on` | error kinds retried: `timeout`, `transient`, `execution` | all three |
//! | `failure_threshold` | failures that open the node target's circuit | 5 |
//! | `recovery_timeout` | seconds before an open circuit lets one probe through | 60 |
//! | `circuit_key` | share a circuit under this name instead of the target's | the target |
//! | `continue_on_error` | a failure does not fail the run; successors get `{error, failed: true}` | false |

use std::time::Duration;

use serde_json::Value;

use crate::model::{Node, Settings};

/// Why a node attempt failed, which decides whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The node's configuration is wrong: retrying cannot help.
    Config,
    Timeout,
    /// A network error, a 5xx or a 429: likely to pass.
    Transient,
    /// The target answered with a failure (a 4xx, a tool that failed, a failed sub-run).
    Execution,
    /// The target's circuit is open: failing fast.
    CircuitOpen,
    Cancelled,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transient => "transient",
            ErrorKind::Execution => "execution",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorKind> {
        Some(match s {
            "config" => ErrorKind::Config,
            "timeout" => ErrorKind::Timeout,
            "transient" => ErrorKind::Transient,
            "execution" => ErrorKind::Execution,
            "circuit_open" => ErrorKind::CircuitOpen,
            "cancelled" => ErrorKind::Cancelled,
            _ => return None,
        })
    }
}

/// Error kinds a policy may retry.
const RETRYABLE: [ErrorKind; 3] = [
    ErrorKind::Timeout,
    ErrorKind::Transient,
    ErrorKind::Execution,
];

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub retry_on: Vec<ErrorKind>,
}

impl RetryPolicy {
    /// The wait before attempt `failed + 1` after attempt `failed` (1-based) failed:
    /// `base × 2^(failed−1)`, at most `max` (tenacity's `wait_exponential`).
    pub fn backoff(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.backoff_max)
    }

    /// Whether a failure of `kind` on attempt `attempt` is tried again.
    pub fn retries(&self, kind: ErrorKind, attempt: u32) -> bool {
        attempt < self.max_attempts && self.retry_on.contains(&kind)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    pub failure_threshold: i32,
    pub recovery_timeout: Duration,
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeOptions {
    /// One attempt's limit; `None` for nodes that wait rather than work.
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub breaker: BreakerSettings,
    pub continue_on_error: bool,
}

const MAX_TIMEOUT_SECONDS: f64 = 7.0 * 86400.0;

fn seconds(v: &Value, what: &str, min_exclusive: bool, max: f64) -> Result<Duration, String> {
    let s = v
        .as_f64()
        .filter(|s| {
            s.is_finite() && (if min_exclusive { *s > 0.0 } else { *s >= 0.0 }) && *s <= max
        })
        .ok_or_else(|| {
            let bound = if min_exclusive { "> 0" } else { ">= 0" };
            format!("{what} must be a number {bound} and at most {max}")
        })?;
    Ok(Duration::from_secs_f64(s))
}

fn default_timeout(node: &Node) -> Option<Duration> {
    match node.node_type.as_str() {
        "agent" => Some(Duration::from_secs(300)),
        "delay" | "trigger" | "parallel" | "condition" | "approval" => None,
        "action" if node.config_str("action") == Some("execute_pipeline") => None,
        _ => Some(Duration::from_secs(60)),
    }
}

impl NodeOptions {
    /// Reads a node's options with the run's settings as defaults.
    pub fn of(node: &Node, settings: &Settings) -> Result<NodeOptions, String> {
        let c = &node.config;
        // An approval's `timeout_seconds` is how long it waits for a person (its own config).
        let timeout = match c
            .get("timeout_seconds")
            .filter(|v| !v.is_null() && node.node_type != "approval")
        {
            Some(v) => Some(seconds(v, "timeout_seconds", true, MAX_TIMEOUT_SECONDS)?),
            None => default_timeout(node),
        };
        let mut retry = RetryPolicy {
            max_attempts: settings.max_retries_per_node.clamp(1, 100) as u32,
            backoff_base: Duration::from_secs_f64(settings.retry_backoff_base.clamp(0.0, 86400.0)),
            backoff_max: Duration::from_secs_f64(settings.retry_backoff_max.clamp(0.0, 86400.0)),
            retry_on: RETRYABLE.to_vec(),
        };
        match c.get("retry") {
            None | Some(Value::Null) => {}
            Some(Value::Object(r)) => {
                for key in r.keys() {
                    if !["max_attempts", "backoff_base", "backoff_max", "retry_on"]
                        .contains(&key.as_str())
                    {
                        return Err(format!("unknown retry key '{key}'"));
                    }
                }
                if let Some(v) = r.get("max_attempts") {
                    retry.max_attempts = v
                        .as_u64()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or("retry.max_attempts must be an integer from 1 to 100")?
                        as u32;
                }
                if let Some(v) = r.get("backoff_base") {
                    retry.backoff_base = seconds(v, "retry.backoff_base", false, 86400.0)?;
                }
                if let Some(v) = r.get("backoff_max") {
                    retry.backoff_max = seconds(v, "retry.backoff_max", false, 86400.0)?;
                }
                if let Some(v) = r.get("retry_on") {
                    let list = v.as_array().ok_or("retry.retry_on must be a list")?;
                    retry.retry_on = list
                        .iter()
                        .map(|k| {
                            k.as_str()
                                .and_then(ErrorKind::parse)
                                .filter(|k| RETRYABLE.contains(k))
                                .ok_or_else(|| {
                                    format!(
                                        "retry.retry_on items must be one of timeout, transient, execution (got {k})"
                                    )
                                })
                        })
                        .collect::<Result<_, _>>()?;
                }
            }
            Some(_) => return Err("retry must be an object".into()),
        }
        let failure_threshold = match c.get("failure_threshold").filter(|v| !v.is_null()) {
            None => 5,
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or("failure_threshold must be an integer from 1 to 10000")?
                as i32,
        };
        let recovery_timeout = match c.get("recovery_timeout").filter(|v| !v.is_null()) {
            None => Duration::from_secs(60),
            Some(v) => seconds(v, "recovery_timeout", false, 86400.0)?,
        };
        let key = match c.get("circuit_key").filter(|v| !v.is_null()) {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 200 => Some(k.clone()),
            Some(_) => return Err("circuit_key must be a string of 1 to 200 characters".into()),
        };
        let continue_on_error = match c.get("continue_on_error") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("continue_on_error must be true or false".into()),
        };
        Ok(NodeOptions {
            timeout,
            retry,
            breaker: BreakerSettings {
                failure_threshold,
                recovery_timeout,
                key,
            },
            continue_on_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_nodes;
    use serde_json::json;

    fn node(config: Value) -> Node {
        parse_nodes(&json!([{"id": "n", "type": "action", "config": config}]))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn defaults_come_from_the_pipeline() {
        let o = NodeOptions::of(&node(json!({})), &Settings::default()).unwrap();
        assert_eq!(o.retry.max_attempts, 3);
        assert_eq!(o.timeout, Some(Duration::from_secs(60)));
        assert_eq!(o.breaker.failure_threshold, 5);
        assert_eq!(
            (1..=8)
                .map(|n| o.retry.backoff(n).as_secs())
                .collect::<Vec<_>>(),
            vec![1, 2, 4, 8, 16, 32, 60, 60]
        );
    }

    #[test]
    fn node_policy_overrides_and_is_checked() {
        let o = NodeOptions::of(
            &node(json!({"retry": {"max_attempts": 5, "backoff_base": 0.01, "retry_on": ["transient"]},
                         "timeout_seconds": 2.5, "continue_on_error": true})),
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(o.retry.max_attempts, 5);
        assert!(o.retry.retries(ErrorKind::Transient, 4));
        assert!(!o.retry.retries(ErrorKind::Transient, 5));
        assert!(!o.retry.retries(ErrorKind::Execution, 1));
        assert!(!o.retry.retries(ErrorKind::Config, 1));
        assert_eq!(o.timeout, Some(Duration::from_millis(2500)));
        assert!(o.continue_on_error);
        for bad in [
            json!({"retry": {"max_attempts": 0}}),
            json!({"retry": {"retry_on": ["config"]}}),
            json!({"retry": {"tries": 2}}),
            json!({"timeout_seconds": -1}),
            json!({"failure_threshold": "x"}),
            json!({"continue_on_error": "yes"}),
        ] {
            assert!(
                NodeOptions::of(&node(bad.clone()), &Settings::default()).is_err(),
                "{bad}"
            );
        }
    }
}
