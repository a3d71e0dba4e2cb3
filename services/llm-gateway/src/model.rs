//! The one normalised model of a chat call that every API (gRPC, OpenAI-compatible HTTP) is
//! translated into and every provider adapter translates out of: messages, tool definitions,
//! tool calls, usage and finish reasons. Limits on sizes and counts are checked here, once.

use tokio::time::Instant;

use serde_json::Value;

use crate::access::Principal;
use crate::cache::CacheMode;
use crate::error::GatewayError;

/// Limits on what one request may carry.
pub const MAX_MESSAGES: usize = 4_096;
pub const MAX_TOOLS: usize = 256;
pub const MAX_FALLBACKS: usize = 8;
pub const MAX_MODEL_NAME: usize = 200;
pub const MAX_STOP_SEQUENCES: usize = 16;
pub const MAX_EMBED_INPUTS: usize = 2_048;
pub const MAX_TOOL_NAME: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, GatewayError> {
        match s {
            "system" | "developer" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" | "function" => Ok(Role::Tool),
            other => Err(GatewayError::InvalidRequest(format!(
                "unknown message role '{}'",
                truncate(other, 40)
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// A JSON object, as text.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Assistant messages: the tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// Tool messages: the call this answers.
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON Schema of the input (an object schema).
    pub parameters: Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// Checks counts and shapes; a wrong request fails here, before any upstream call.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let bad = |m: String| Err(GatewayError::InvalidRequest(m));
        if self.messages.is_empty() {
            return bad("messages must not be empty".into());
        }
        if self.messages.len() > MAX_MESSAGES {
            return bad(format!("at most {MAX_MESSAGES} messages"));
        }
        if self.tools.len() > MAX_TOOLS {
            return bad(format!("at most {MAX_TOOLS} tools"));
        }
        if self.stop.len() > MAX_STOP_SEQUENCES {
            return bad(format!("at most {MAX_STOP_SEQUENCES} stop sequences"));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return bad("temperature must be between 0 and 2".into());
        }
        if self.max_tokens == Some(0) {
            return bad("max_tokens must be at least 1".into());
        }
        for tool in &self.tools {
            if tool.name.is_empty()
                || tool.name.len() > MAX_TOOL_NAME
                || !tool
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return bad(format!(
                    "tool name '{}' must be 1-{MAX_TOOL_NAME} characters of [A-Za-z0-9_.-]",
                    truncate(&tool.name, 40)
                ));
            }
            if !tool.parameters.is_object() {
                return bad(format!(
                    "tool '{}': parameters must be a JSON object",
                    tool.name
                ));
            }
        }
        for m in &self.messages {
            for c in &m.tool_calls {
                if m.role != Role::Assistant {
                    return bad("only assistant messages carry tool_calls".into());
                }
                if !matches!(
                    serde_json::from_str::<Value>(&c.arguments),
                    Ok(Value::Object(_))
                ) {
                    return bad(format!(
                        "tool call '{}': arguments must be a JSON object",
                        truncate(&c.name, 40)
                    ));
                }
            }
            if m.role == Role::Tool && m.tool_call_id.as_deref().unwrap_or("").is_empty() {
                return bad("tool messages need tool_call_id".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Error,
}

impl FinishReason {
    pub fn parse(s: &str) -> Option<FinishReason> {
        Some(match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            "error" => FinishReason::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u32,
    pub output: u32,
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutput {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: FinishReason,
    pub usage: TokenUsage,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Text(String),
    /// Complete tool calls, once the provider finished streaming them.
    ToolCalls(Vec<ToolCall>),
    /// The last event.
    Finish {
        finish: FinishReason,
        usage: TokenUsage,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOutput {
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u32,
}

/// Who asked, for usage accounting.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub service: Option<String>,
    pub agent_id: Option<i64>,
    pub user_id: Option<String>,
}

/// A chat call as the gateway runs it.
#[derive(Debug, Clone)]
pub struct ChatCall {
    pub model: String,
    pub fallbacks: Vec<String>,
    pub request: ChatRequest,
    pub caller: Caller,
    pub request_id: String,
    /// Overall deadline (retries and fallbacks included).
    pub deadline: Instant,
    /// On whose authority (a virtual key is limited; trusted callers are not).
    pub principal: Principal,
    /// Whether the response cache may answer (and keep) this call.
    pub cache: CacheMode,
}

#[derive(Debug, Clone)]
pub struct EmbedCall {
    pub model: String,
    pub inputs: Vec<String>,
    pub caller: Caller,
    pub request_id: String,
    pub deadline: Instant,
    pub principal: Principal,
}

/// A request id from the caller when it is reasonable (printable, short), else a new one.
pub fn request_id(given: Option<&str>) -> String {
    match given {
        Some(id)
            if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id.to_owned()
        }
        _ => new_request_id(),
    }
}

/// A process-random prefix and a counter: unique across instances without a system call
/// per request.
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let u = uuid::Uuid::new_v4().simple().to_string();
        u[..16].to_owned()
    });
    format!("{prefix}{:016x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// At most `max` characters of `s`.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Checks a model name (or fallback) before any lookup.
pub fn check_model_name(name: &str) -> Result<(), GatewayError> {
    if name.is_empty() || name.len() > MAX_MODEL_NAME || name.chars().any(char::is_control) {
        return Err(GatewayError::InvalidRequest(format!(
            "model must be 1-{MAX_MODEL_NAME} printable characters"
        )));
    }
    Ok(())
}
