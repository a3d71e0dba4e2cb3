//! `tool` nodes (any registered tool, its input validated by its JSON Schema) and the one way
//! every node calls a tool: permissions from the tool settings, the run's cancellation, an
//! `Idempotency-Key` header for tools that take headers, and failures classified for the
//! retry policy (a refused or invalid call is a configuration error; a network error, a 5xx
//! or a 429 is transient; any other failure the target reported is an execution error).

use gathering_tools::{CallContext, ToolError, ToolOutput};
use serde_json::{Map, Value, json};

use super::{Call, NodeError};
use crate::jobs::pipelines::Services;

/// Calls `tool` with `input` for `call`; the output when the tool succeeded.
pub async fn invoke(
    services: &Services,
    call: &Call,
    tool: &str,
    mut input: Value,
) -> Result<ToolOutput, NodeError> {
    let registry = services.tools.registry();
    let def = registry
        .get(tool)
        .ok_or_else(|| NodeError::config(format!("Tool '{tool}' not found in registry")))?;
    let takes_headers = def.input_schema.pointer("/properties/headers").is_some();
    if takes_headers && let Some(obj) = input.as_object_mut() {
        let headers = obj
            .entry("headers")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(h) = headers.as_object_mut() {
            h.entry("Idempotency-Key")
                .or_insert_with(|| Value::String(call.idempotency_key()));
        }
    }
    let agent_id = call.config.get("agent_id").and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let ctx = CallContext::new(services.tools.config().grants)
        .confirmed(call.config.get("confirmed").and_then(Value::as_bool) == Some(true))
        .agent(if call.node.node_type == "tool" {
            agent_id
        } else {
            None
        })
        .with_cancel(call.cancel.child_token());
    match registry.call(tool, input, &ctx).await {
        Ok(out) if out.success => Ok(out),
        Ok(out) => {
            let status = out.data.get("status").and_then(Value::as_u64);
            let message = format!("Tool '{tool}' failed: {}", out.message);
            Err(match status {
                Some(s) if s >= 500 || s == 429 => NodeError::transient(message),
                _ => NodeError::execution(message),
            })
        }
        Err(e) => Err(classify(e)),
    }
}

fn classify(e: ToolError) -> NodeError {
    use gathering_pipeline::ErrorKind;
    let kind = match &e {
        ToolError::Timeout { .. } => ErrorKind::Timeout,
        ToolError::Cancelled { .. } => ErrorKind::Cancelled,
        ToolError::Failed(_) | ToolError::Internal { .. } | ToolError::Db(_) => {
            ErrorKind::Transient
        }
        _ => ErrorKind::Config,
    };
    NodeError::new(kind, e.to_string())
}

pub async fn run(services: &Services, call: &Call) -> Result<Value, NodeError> {
    let tool = call
        .str("tool", Some("tool_name"))
        .ok_or_else(|| {
            NodeError::config(format!(
                "Tool node '{}' is missing required config key 'tool'",
                call.node.id
            ))
        })?
        .to_owned();
    let input = match call
        .config
        .get("input")
        .filter(|v| !v.is_null())
        .or_else(|| call.config.get("tool_input"))
    {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(NodeError::config(format!(
                "Tool node '{}': 'input' must be an object",
                call.node.id
            )));
        }
    };
    let out = invoke(services, call, &tool, input).await?;
    Ok(json!({"tool": tool, "success": true, "message": out.message, "data": out.data}))
}
