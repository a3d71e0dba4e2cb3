//! What each node type does (A13 handlers, plus `tool` and `approval`). Nodes that only compute
//! (trigger, parallel, condition, delay, unknown actions) are decided on the spot by [`plan`]
//! (an approval waits for its decision: `super::approvals`); nodes
//! that reach out (agent, notification, API call, tool, sub-pipeline) run as tasks through
//! [`execute`] and classify their failures ([`NodeError`]) so the retry policy can decide.

pub mod action;
pub mod agent;
pub mod condition;
pub mod subrun;
pub mod tool;

use std::time::Duration;

use gathering_pipeline::{ErrorKind, Node};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Services;

/// A failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl NodeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn execution(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Execution, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
}

/// Where an attempt got to.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Done(Value),
    /// A sub-run was started (or found) for this attempt; wait for it.
    ChildStarted(i64),
    /// The sub-run is still running.
    ChildRunning,
}

/// One attempt of one node: the node, its config with references resolved, and its inputs
/// (`{predecessor_id: output}`).
#[derive(Debug, Clone)]
pub struct Call {
    pub run_id: i64,
    pub pipeline_id: i64,
    pub depth: i32,
    pub node: Node,
    pub config: Map<String, Value>,
    pub inputs: Map<String, Value>,
    pub trigger_data: Value,
    pub attempt: u32,
    pub child_run_id: Option<i64>,
    pub cancel: CancellationToken,
}

impl Call {
    /// The idempotency key of this attempt, the same however often the attempt is re-run
    /// (an executor that resumes a run re-runs a running node's attempt): targets that
    /// de-duplicate on it see one call per attempt.
    pub fn idempotency_key(&self) -> String {
        let node: String = self
            .node
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "pipeline-run-{}-node-{}-attempt-{}",
            self.run_id, node, self.attempt
        )
    }

    pub fn str(&self, key: &str, alias: Option<&str>) -> Option<&str> {
        self.config
            .get(key)
            .filter(|v| !v.is_null())
            .or_else(|| alias.and_then(|a| self.config.get(a)))
            .and_then(Value::as_str)
    }

    pub fn action(&self) -> &str {
        self.str("action", Some("action_type")).unwrap_or("unknown")
    }
}

/// How a node proceeds once started.
#[derive(Debug)]
pub enum Plan {
    /// Decided now, without I/O.
    Now(Result<Value, NodeError>),
    /// A delay: completes with its inputs after this long (the run is re-scheduled meanwhile).
    Wait(Duration),
    /// Runs as a task ([`execute`]).
    Task,
    /// Waits for a person's decision (or its timeout), without a task.
    Approval,
}

pub fn plan(call: &Call) -> Plan {
    match call.node.node_type.as_str() {
        "trigger" => Plan::Now(Ok(call.trigger_data.clone())),
        "parallel" => Plan::Now(Ok(Value::Object(call.inputs.clone()))),
        "condition" => {
            let cond = call.config.get("condition").cloned().unwrap_or(Value::Null);
            Plan::Now(Ok(
                json!({"result": condition::evaluate(&cond, &call.inputs)}),
            ))
        }
        "delay" => {
            let seconds = call
                .config
                .get("seconds")
                .filter(|v| !v.is_null())
                .or_else(|| call.config.get("delay_seconds"));
            match seconds {
                None | Some(Value::Null) => Plan::Now(Ok(Value::Object(call.inputs.clone()))),
                Some(v) => match v.as_f64().filter(|s| {
                    s.is_finite()
                        && (0.0..=gathering_pipeline::validate::MAX_DELAY_SECONDS).contains(s)
                }) {
                    Some(s) if s > 0.0 => Plan::Wait(Duration::from_secs_f64(s)),
                    Some(_) => Plan::Now(Ok(Value::Object(call.inputs.clone()))),
                    None => Plan::Now(Err(NodeError::config(format!(
                        "Delay node '{}' has invalid 'seconds': {v}",
                        call.node.id
                    )))),
                },
            }
        }
        "action" => match call.action() {
            "send_notification" | "call_api" | "execute_pipeline" => Plan::Task,
            // Validation refuses these; a definition stored before that rule fails here rather
            // than pretending the action ran.
            other => Plan::Now(Err(NodeError::config(format!(
                "Action node '{}' has unknown action '{other}'",
                call.node.id
            )))),
        },
        "agent" | "tool" => Plan::Task,
        "approval" => Plan::Approval,
        other => Plan::Now(Err(NodeError::config(format!(
            "Unknown node type '{other}' for node '{}'",
            call.node.id
        )))),
    }
}

/// The circuit breaker key of a node's target; `None` for nodes without one.
pub fn breaker_key(call: &Call) -> Option<String> {
    let key = match call.node.node_type.as_str() {
        "agent" => format!(
            "agent:{}",
            agent::agent_id(call).map_or_else(|_| "?".into(), |id| id.to_string())
        ),
        "tool" => format!(
            "tool:{}",
            call.str("tool", Some("tool_name")).unwrap_or("?")
        ),
        "action" => match call.action() {
            "call_api" => format!("http:{}", action::origin(call.str("url", None))),
            "send_notification" => format!(
                "notify:{}:{}",
                call.str("tool_name", None).unwrap_or("notify_webhook"),
                action::origin(call.str("url", Some("webhook_url")))
            ),
            "execute_pipeline" => format!(
                "pipeline:{}",
                call.config
                    .get("pipeline_id")
                    .map_or_else(|| "?".into(), |v| v.to_string())
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(key)
}

/// Runs one attempt of a task node.
pub async fn execute(services: &Services, call: &Call) -> Result<Progress, NodeError> {
    match call.node.node_type.as_str() {
        "agent" => agent::run(services, call).await.map(Progress::Done),
        "tool" => tool::run(services, call).await.map(Progress::Done),
        "action" => match call.action() {
            "send_notification" => action::notify(services, call).await.map(Progress::Done),
            "call_api" => action::call_api(services, call).await.map(Progress::Done),
            "execute_pipeline" => subrun::step(services, call).await,
            other => Err(NodeError::config(format!(
                "Action '{other}' of node '{}' does not run as a task",
                call.node.id
            ))),
        },
        other => Err(NodeError::config(format!(
            "Unknown node type '{other}' for node '{}'",
            call.node.id
        ))),
    }
}
