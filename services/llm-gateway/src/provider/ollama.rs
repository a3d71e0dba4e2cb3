//! Ollama's native API: `/api/chat` (one JSON object per line when streaming, the last with
//! `"done": true` and the token counts) and `/api/embed`. Tool calls carry their arguments as a
//! JSON object and have no ids; the gateway gives them ids so that results can refer to them.

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{DecodeError, DecodeResult};
use crate::error::GatewayError;
use crate::model::{
    ChatOutput, ChatRequest, EmbedOutput, FinishReason, Role, StreamEvent, TokenUsage, ToolCall,
};

pub fn chat_body(model: &str, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, GatewayError> {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let mut v = json!({"role": m.role.as_str(), "content": m.content});
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let args: Value =
                            serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                        json!({"function": {"name": c.name, "arguments": args}})
                    })
                    .collect();
                v["tool_calls"] = Value::Array(calls);
            }
            if m.role == Role::Tool
                && let Some(name) = &m.name
            {
                v["tool_name"] = Value::String(name.clone());
            }
            v
        })
        .collect();
    let mut body = json!({"model": model, "messages": messages, "stream": stream});
    let mut options = serde_json::Map::new();
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(n) = req.max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if !req.stop.is_empty() {
        options.insert("stop".into(), json!(req.stop));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
    }
    serde_json::to_vec(&body).map_err(|e| GatewayError::Internal(e.to_string()))
}

#[derive(Deserialize)]
struct ChatResp {
    #[serde(default)]
    message: Option<MsgIn>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: u32,
    #[serde(default)]
    eval_count: u32,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct MsgIn {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<CallIn>,
}

#[derive(Deserialize)]
struct CallIn {
    #[serde(default)]
    id: Option<String>,
    function: FuncIn,
}

#[derive(Deserialize)]
struct FuncIn {
    name: String,
    #[serde(default)]
    arguments: Value,
}

fn finish(reason: Option<&str>, has_calls: bool) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn to_calls(calls: Vec<CallIn>, first_index: usize) -> Vec<ToolCall> {
    calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: c.id.unwrap_or_else(|| format!("call_{}", first_index + i)),
            name: c.function.name,
            arguments: match c.function.arguments {
                Value::Null => "{}".into(),
                Value::String(s) => super::openai::normalise_arguments(s),
                other => other.to_string(),
            },
        })
        .collect()
}

pub fn parse_chat(body: &[u8]) -> Result<ChatOutput, String> {
    let resp: ChatResp = serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    if let Some(e) = resp.error {
        return Err(format!("error in a 200 response: {e}"));
    }
    let message = resp.message.ok_or("no message in the response")?;
    let tool_calls = to_calls(message.tool_calls, 0);
    Ok(ChatOutput {
        content: message.content,
        finish: finish(resp.done_reason.as_deref(), !tool_calls.is_empty()),
        tool_calls,
        usage: TokenUsage {
            input: resp.prompt_eval_count,
            output: resp.eval_count,
        },
    })
}

#[derive(Default)]
pub struct StreamDecoder {
    calls: Vec<ToolCall>,
}

impl StreamDecoder {
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        let line: ChatResp = serde_json::from_slice(data)
            .map_err(|e| DecodeError::Malformed(format!("invalid stream line ({e})")))?;
        if let Some(message) = line.error {
            return Err(DecodeError::Provider {
                status: 500,
                message,
            });
        }
        if let Some(m) = line.message {
            if !m.content.is_empty() {
                out.push_back(StreamEvent::Text(m.content));
            }
            let first = self.calls.len();
            self.calls.extend(to_calls(m.tool_calls, first));
        }
        if line.done {
            let calls = std::mem::take(&mut self.calls);
            let finish = finish(line.done_reason.as_deref(), !calls.is_empty());
            if !calls.is_empty() {
                out.push_back(StreamEvent::ToolCalls(calls));
            }
            out.push_back(StreamEvent::Finish {
                finish,
                usage: TokenUsage {
                    input: line.prompt_eval_count,
                    output: line.eval_count,
                },
            });
            return Ok(true);
        }
        Ok(false)
    }
}

#[derive(Deserialize)]
struct EmbedResp {
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    prompt_eval_count: u32,
}

pub fn parse_embed(body: &[u8]) -> Result<EmbedOutput, String> {
    let resp: EmbedResp =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    Ok(EmbedOutput {
        vectors: resp.embeddings,
        input_tokens: resp.prompt_eval_count,
    })
}
