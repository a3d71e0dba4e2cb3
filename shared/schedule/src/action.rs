//! What a schedule does when it fires (`action_type` and its `action_config`), checked when the
//! schedule is written so that a bad setting is a 422 then rather than a failed run later.
//!
//! - `run_task`: a background task for the schedule's agent. `goal`, `max_steps`,
//!   `timeout_seconds` and `goal_context` in the config override the schedule's columns.
//! - `execute_pipeline`: a run of `pipeline_id` (config, else metadata) with
//!   `trigger_data` = the config.
//! - `send_notification`: a notifications tool (`tool_name`, default `notify_webhook`) with
//!   `tool_input` (default: the config without its own keys).
//! - `call_api`: an http tool (`tool_name`, default `http_get`) with `tool_input`.
//!
//! Event schedules may narrow the events they fire on with `event_filter` (config, else
//! metadata): an object every matching event's payload must contain (JSON containment, so
//! `{"pipeline_id": 3}` matches a payload with `"pipeline_id": 3` among other keys).

use serde_json::{Map, Value};

use crate::error::ScheduleError;

/// Largest `action_config` / `metadata` accepted (serialised).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

pub const NOTIFICATION_TOOLS: &[&str] = &[
    "notify_webhook",
    "notify_slack",
    "notify_discord",
    "notify_teams",
    "notify_batch",
];
pub const API_TOOLS: &[&str] = &[
    "http_get",
    "http_post",
    "http_put",
    "http_delete",
    "http_request",
    "api_call",
];

/// Keys of a notification/API config that configure the action rather than the tool call.
const OWN_KEYS: &[&str] = &["tool_name", "tool_input", "skill_config", "event_filter"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    RunTask,
    ExecutePipeline,
    SendNotification,
    CallApi,
}

impl ActionType {
    pub fn parse(s: &str) -> Result<ActionType, ScheduleError> {
        Ok(match s {
            "run_task" => ActionType::RunTask,
            "execute_pipeline" => ActionType::ExecutePipeline,
            "send_notification" => ActionType::SendNotification,
            "call_api" => ActionType::CallApi,
            other => {
                return Err(ScheduleError::invalid(
                    "action_type",
                    format!(
                        "unknown action_type '{}': expected run_task, execute_pipeline, send_notification or call_api",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::RunTask => "run_task",
            ActionType::ExecutePipeline => "execute_pipeline",
            ActionType::SendNotification => "send_notification",
            ActionType::CallApi => "call_api",
        }
    }
}

fn size_ok(field: &'static str, v: &Value) -> Result<(), ScheduleError> {
    let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_CONFIG_BYTES {
        return Err(ScheduleError::invalid(
            field,
            format!("{field} is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn object<'a>(field: &'static str, v: &'a Value) -> Result<&'a Map<String, Value>, ScheduleError> {
    v.as_object()
        .ok_or_else(|| ScheduleError::invalid(field, format!("{field} must be a JSON object")))
}

/// Checks `config` (and `metadata`, where some settings may live) for `action`.
pub fn validate(action: ActionType, config: &Value, metadata: &Value) -> Result<(), ScheduleError> {
    size_ok("action_config", config)?;
    size_ok("metadata", metadata)?;
    let cfg = object("action_config", config)?;
    object("metadata", metadata)?;
    if let Some(f) = event_filter(config, metadata) {
        object("action_config", f).map_err(|_| {
            ScheduleError::invalid("action_config", "event_filter must be a JSON object")
        })?;
    }
    let tool = |allowed: &[&str], default: &str| -> Result<(), ScheduleError> {
        let name = match cfg.get("tool_name") {
            None | Some(Value::Null) => default,
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(ScheduleError::invalid(
                    "action_config",
                    "tool_name must be a string",
                ));
            }
        };
        if !allowed.contains(&name) {
            return Err(ScheduleError::invalid(
                "action_config",
                format!(
                    "tool_name '{}' is not available for {}: use one of {}",
                    name.chars().take(60).collect::<String>(),
                    action.as_str(),
                    allowed.join(", ")
                ),
            ));
        }
        if let Some(input) = cfg.get("tool_input")
            && !input.is_object()
        {
            return Err(ScheduleError::invalid(
                "action_config",
                "tool_input must be a JSON object",
            ));
        }
        Ok(())
    };
    match action {
        ActionType::RunTask => {
            if let Some(g) = cfg.get("goal")
                && g.as_str().is_none_or(|g| g.trim().is_empty())
            {
                return Err(ScheduleError::invalid(
                    "action_config",
                    "goal must be a non-empty string",
                ));
            }
            for (key, max) in [("max_steps", 500), ("timeout_seconds", 86_400)] {
                if let Some(v) = cfg.get(key)
                    && !v.as_i64().is_some_and(|n| (1..=max).contains(&n))
                {
                    return Err(ScheduleError::invalid(
                        "action_config",
                        format!("{key} must be a whole number from 1 to {max}"),
                    ));
                }
            }
            if let Some(c) = cfg.get("goal_context")
                && !c.is_object()
            {
                return Err(ScheduleError::invalid(
                    "action_config",
                    "goal_context must be a JSON object",
                ));
            }
            Ok(())
        }
        ActionType::ExecutePipeline => pipeline_id(config, metadata).map(|_| ()),
        ActionType::SendNotification => tool(NOTIFICATION_TOOLS, "notify_webhook"),
        ActionType::CallApi => tool(API_TOOLS, "http_get"),
    }
}

/// The pipeline an `execute_pipeline` action runs: `pipeline_id` of the config, else of the
/// metadata (a number or a numeric string).
pub fn pipeline_id(config: &Value, metadata: &Value) -> Result<i64, ScheduleError> {
    let raw = config
        .get("pipeline_id")
        .filter(|v| !v.is_null())
        .or_else(|| metadata.get("pipeline_id").filter(|v| !v.is_null()))
        .ok_or_else(|| {
            ScheduleError::invalid(
                "action_config",
                "pipeline_id required in action_config (or metadata) for execute_pipeline",
            )
        })?;
    raw.as_i64()
        .or_else(|| raw.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ScheduleError::invalid("action_config", "pipeline_id must be a positive integer")
        })
}

/// The tool and input a `send_notification` or `call_api` action calls.
pub fn tool_call(action: ActionType, config: &Value) -> Option<(String, Value)> {
    let default = match action {
        ActionType::SendNotification => "notify_webhook",
        ActionType::CallApi => "http_get",
        _ => return None,
    };
    let name = config
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_owned();
    let input = match config.get("tool_input") {
        Some(i) if i.is_object() => i.clone(),
        _ => {
            let mut m = config.as_object().cloned().unwrap_or_default();
            for k in OWN_KEYS {
                m.remove(*k);
            }
            Value::Object(m)
        }
    };
    Some((name, input))
}

/// An event schedule's filter: `event_filter` of the config, else of the metadata.
pub fn event_filter<'a>(config: &'a Value, metadata: &'a Value) -> Option<&'a Value> {
    config
        .get("event_filter")
        .filter(|v| !v.is_null())
        .or_else(|| metadata.get("event_filter").filter(|v| !v.is_null()))
}

/// `value` with secrets (tokens, passwords, keys, authorisation headers, webhook URLs) replaced
/// by `"***"`, for API responses and events.
pub fn redacted(value: &Value) -> Value {
    fn secret_key(k: &str) -> bool {
        let k = k.to_ascii_lowercase();
        [
            "token",
            "password",
            "secret",
            "api_key",
            "apikey",
            "authorization",
            "webhook_url",
            "cookie",
        ]
        .iter()
        .any(|s| k.contains(s))
    }
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if secret_key(k) && !v.is_null() {
                        Value::String("***".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        other => other.clone(),
    }
}
