//! Agent nodes: the agent answers the node's task through the agent runtime (its persona,
//! model and tools, through the LLM gateway); never simulated. The prompt is the task plus,
//! when predecessors produced something, "Context from previous nodes:" and `id: output; …`
//! (A13). The gateway request id is the attempt's idempotency key.

use gathering_agents::AgentError;
use serde_json::{Value, json};

use super::{Call, NodeError};
use crate::jobs::pipelines::Services;

/// Longest text of one predecessor's output put into the prompt.
const MAX_CONTEXT_CHARS: usize = 4000;

/// The agent id, given as a number or a numeric string.
pub fn agent_id(call: &Call) -> Result<i64, NodeError> {
    let bad = |v: &Value| {
        NodeError::config(format!(
            "Agent node '{}' has an invalid agent_id: {v} (an agent's numeric id)",
            call.node.id
        ))
    };
    match call.config.get("agent_id") {
        Some(v @ Value::Number(n)) => n.as_i64().ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => s.trim().parse().map_err(|_| bad(v)),
        _ => Err(NodeError::config(format!(
            "Agent node '{}' missing 'agent_id' in config",
            call.node.id
        ))),
    }
}

pub fn prompt(call: &Call) -> String {
    let task = call.str("task", Some("task_prompt")).unwrap_or_default();
    if call.inputs.is_empty() {
        return task.to_owned();
    }
    let context: Vec<String> = call
        .inputs
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!(
                "{k}: {}",
                text.chars().take(MAX_CONTEXT_CHARS).collect::<String>()
            )
        })
        .collect();
    format!(
        "{task}\n\nContext from previous nodes:\n{}",
        context.join("; ")
    )
}

pub async fn run(services: &Services, call: &Call) -> Result<Value, NodeError> {
    let id = agent_id(call)?;
    let reply = services
        .agents
        .run_once(id, &prompt(call), &call.idempotency_key(), &call.cancel)
        .await
        .map_err(|e| {
            let message = format!("Agent node '{}' failed: {e}", call.node.id);
            match e {
                AgentError::NotFound(_) | AgentError::Invalid(_) => NodeError::config(message),
                AgentError::Cancelled => {
                    NodeError::new(gathering_pipeline::ErrorKind::Cancelled, message)
                }
                AgentError::Llm(_) | AgentError::Db(_) | AgentError::AlreadyProcessing => {
                    NodeError::transient(message)
                }
                _ => NodeError::execution(message),
            }
        })?;
    Ok(json!({
        "result": reply.content,
        "agent_id": call.config.get("agent_id").cloned().unwrap_or(Value::from(id)),
        "agent_name": reply.agent_name,
        "simulated": false,
        "model": reply.model,
        "tokens": reply.tokens_used,
    }))
}
