//! The Anthropic Messages API: the system prompt moves to `system`, tool results become
//! `tool_result` blocks of a user turn, assistant tool calls become `tool_use` blocks, and
//! consecutive turns of one role are merged (the API wants user and assistant to alternate).
//! Streams are typed events: `message_start`, `content_block_start/delta/stop`,
//! `message_delta`, `message_stop` (plus `ping` and `error`).

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{DecodeError, DecodeResult};
use crate::error::GatewayError;
use crate::model::{
    ChatOutput, ChatRequest, FinishReason, Role, StreamEvent, TokenUsage, ToolCall,
};

pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is mandatory in this API.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub fn chat_body(model: &str, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, GatewayError> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks): (&'static str, Vec<Value>) = match m.role {
            Role::System => {
                system.push(&m.content);
                continue;
            }
            Role::User => ("user", text_block(&m.content)),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.as_deref().unwrap_or_default(),
                    "content": m.content,
                })],
            ),
            Role::Assistant => {
                let mut blocks = text_block(&m.content);
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments).map_err(|_| {
                        GatewayError::InvalidRequest("tool call arguments must be JSON".into())
                    })?;
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                ("assistant", blocks)
            }
        };
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut content)| {
            if content.is_empty() {
                content.push(json!({"type": "text", "text": "(empty)"}));
            }
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": stream,
    });
    if !system.is_empty() {
        body["system"] = Value::String(system.join("\n\n"));
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut schema = t.parameters.clone();
                if schema.get("type").is_none() {
                    schema["type"] = Value::String("object".into());
                }
                json!({"name": t.name, "description": t.description, "input_schema": schema})
            })
            .collect();
    }
    serde_json::to_vec(&body).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// Empty text blocks are refused by the API: none is sent.
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

pub fn stop_reason(s: &str) -> FinishReason {
    match s {
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

#[derive(Deserialize)]
struct Resp {
    content: Vec<Block>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: UsageIn,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct UsageIn {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

pub fn parse_chat(body: &[u8]) -> Result<ChatOutput, String> {
    let resp: Resp = serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in resp.content {
        match block {
            Block::Text { text } => content.push_str(&text),
            Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            Block::Other => {}
        }
    }
    Ok(ChatOutput {
        content,
        tool_calls,
        finish: resp
            .stop_reason
            .as_deref()
            .map_or(FinishReason::Stop, stop_reason),
        usage: TokenUsage {
            input: resp.usage.input_tokens,
            output: resp.usage.output_tokens,
        },
    })
}

#[derive(Default)]
pub struct StreamDecoder {
    input_tokens: u32,
    output_tokens: u32,
    stop: Option<FinishReason>,
    /// The tool_use block being streamed: its call and partial JSON.
    current_tool: Option<ToolCall>,
    calls: Vec<ToolCall>,
}

impl StreamDecoder {
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        let v: Value = serde_json::from_slice(data)
            .map_err(|e| DecodeError::Malformed(format!("invalid stream event ({e})")))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.input_tokens = tokens(u, "input_tokens");
                    self.output_tokens = tokens(u, "output_tokens");
                }
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        self.current_tool = Some(ToolCall {
                            id: str_of(block, "id"),
                            name: str_of(block, "name"),
                            arguments: String::new(),
                        });
                    }
                    Some("text") => {
                        let text = str_of(block, "text");
                        if !text.is_empty() {
                            out.push_back(StreamEvent::Text(text));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = str_of(delta, "text");
                        if !text.is_empty() {
                            out.push_back(StreamEvent::Text(text));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(tool) = &mut self.current_tool {
                            tool.arguments.push_str(
                                delta
                                    .get("partial_json")
                                    .and_then(Value::as_str)
                                    .unwrap_or(""),
                            );
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(mut tool) = self.current_tool.take() {
                    tool.arguments = super::openai::normalise_arguments(tool.arguments);
                    if serde_json::from_str::<Value>(&tool.arguments).is_err() {
                        return Err(DecodeError::Malformed(
                            "tool_use input is not valid JSON".into(),
                        ));
                    }
                    self.calls.push(tool);
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_reason(r));
                }
                if let Some(u) = v.get("usage") {
                    self.output_tokens = tokens(u, "output_tokens").max(self.output_tokens);
                    if u.get("input_tokens").is_some() {
                        self.input_tokens = tokens(u, "input_tokens");
                    }
                }
            }
            "message_stop" => {
                if !self.calls.is_empty() {
                    out.push_back(StreamEvent::ToolCalls(std::mem::take(&mut self.calls)));
                }
                out.push_back(StreamEvent::Finish {
                    finish: self.stop.unwrap_or(FinishReason::Stop),
                    usage: TokenUsage {
                        input: self.input_tokens,
                        output: self.output_tokens,
                    },
                });
                return Ok(true);
            }
            "error" => {
                let kind = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let message = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event in the stream")
                    .to_owned();
                let status = match kind {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    _ => 500,
                };
                return Err(DecodeError::Provider { status, message });
            }
            _ => {} // ping, and event types added later
        }
        Ok(false)
    }
}

fn tokens(v: &Value, field: &str) -> u32 {
    v.get(field)
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn str_of(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Message;

    #[test]
    fn system_tool_use_and_tool_result_blocks() {
        let mut assistant = Message::new(Role::Assistant, "let me look");
        assistant.tool_calls.push(ToolCall {
            id: "toolu_1".into(),
            name: "get".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        });
        let mut r1 = Message::new(Role::Tool, "sunny");
        r1.tool_call_id = Some("toolu_1".into());
        let req = ChatRequest {
            messages: vec![
                Message::new(Role::System, "be brief"),
                Message::new(Role::User, "weather?"),
                assistant,
                r1,
                Message::new(Role::User, "thanks"),
            ],
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&chat_body("claude", &req, false).unwrap()).unwrap();
        assert_eq!(v["system"], "be brief");
        assert_eq!(v["max_tokens"], DEFAULT_MAX_TOKENS);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3, "tool result and next user text merge: {v}");
        assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
        assert_eq!(msgs[1]["content"][1]["input"]["city"], "Paris");
        assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
        assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(msgs[2]["content"][1]["text"], "thanks");
    }
}
