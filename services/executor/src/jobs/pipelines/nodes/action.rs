//! Action nodes (A13): `send_notification` through the notifications skill (`tool_name`,
//! default `notify_webhook`) and `call_api` through the http skill (`tool_name`, default
//! `http_get`; `url` required). The tool input is `tool_input` when given, else the node's
//! config keys that the tool's schema knows (so the editor's own keys do not fail
//! validation); `webhook_url` stands for `url`. The output is `{action, executed: true, tool,
//! success, message, …the tool's data}`. Both go through the guarded HTTP client (SSRF guard)
//! and carry the attempt's `Idempotency-Key`.

use serde_json::{Map, Value, json};

use super::tool::invoke;
use super::{Call, NodeError};
use crate::jobs::pipelines::Services;

/// `scheme://host:port` of a URL, the circuit breaker's target for HTTP actions.
pub fn origin(url: Option<&str>) -> String {
    url.and_then(|u| url::Url::parse(u).ok())
        .map(|u| {
            format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port_or_known_default().unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "?".into())
}

/// Config keys that steer the node itself, never passed to the tool (`timeout_seconds` is
/// the node's timeout, not the request's: put the tool's own in `tool_input`).
const NODE_KEYS: &[&str] = &[
    "action",
    "action_type",
    "tool_name",
    "tool_input",
    "timeout_seconds",
    "retry",
    "failure_threshold",
    "recovery_timeout",
    "circuit_key",
    "continue_on_error",
    "failure_handler",
    "confirmed",
];

/// The tool input: `tool_input`, or the config keys the tool's schema declares.
fn tool_input(services: &Services, call: &Call, tool: &str) -> Result<Value, NodeError> {
    match call.config.get("tool_input") {
        Some(Value::Object(o)) => return Ok(Value::Object(o.clone())),
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(NodeError::config(format!(
                "Action node '{}': 'tool_input' must be an object",
                call.node.id
            )));
        }
    }
    let def = services
        .tools
        .registry()
        .get(tool)
        .ok_or_else(|| NodeError::config(format!("Tool '{tool}' not found in registry")))?;
    let known = def
        .input_schema
        .get("properties")
        .and_then(Value::as_object);
    let mut input: Map<String, Value> = call
        .config
        .iter()
        .filter(|(k, v)| {
            !v.is_null()
                && !NODE_KEYS.contains(&k.as_str())
                && known.is_some_and(|p| p.contains_key(*k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if known.is_some_and(|p| p.contains_key("url"))
        && !input.contains_key("url")
        && let Some(u) = call.config.get("webhook_url").filter(|v| v.is_string())
    {
        input.insert("url".into(), u.clone());
    }
    Ok(Value::Object(input))
}

fn output(action: &str, tool: &str, out: gathering_tools::ToolOutput) -> Value {
    let mut o = json!({
        "action": action,
        "executed": true,
        "tool": tool,
        "success": out.success,
        "message": out.message,
    });
    if let (Some(map), Value::Object(data)) = (o.as_object_mut(), out.data) {
        for (k, v) in data {
            map.entry(k).or_insert(v);
        }
    }
    o
}

pub async fn notify(services: &Services, call: &Call) -> Result<Value, NodeError> {
    let tool = call
        .str("tool_name", None)
        .unwrap_or("notify_webhook")
        .to_owned();
    let mut input = tool_input(services, call, &tool)?;
    if tool == "notify_webhook"
        && let Some(obj) = input.as_object_mut()
    {
        // A notification without a payload tells where it comes from and what came in.
        obj.entry("payload").or_insert_with(|| {
            json!({
                "pipeline_id": call.pipeline_id,
                "run_id": call.run_id,
                "node_id": call.node.id,
                "inputs": call.inputs,
            })
        });
    }
    let out = invoke(services, call, &tool, input).await?;
    Ok(output("send_notification", &tool, out))
}

pub async fn call_api(services: &Services, call: &Call) -> Result<Value, NodeError> {
    if call.str("url", None).is_none_or(str::is_empty) {
        return Err(NodeError::config(format!(
            "Action node '{}' with action 'call_api' missing 'url' in config",
            call.node.id
        )));
    }
    let tool = call.str("tool_name", None).unwrap_or("http_get").to_owned();
    let input = tool_input(services, call, &tool)?;
    let out = invoke(services, call, &tool, input).await?;
    Ok(output("call_api", &tool, out))
}
