//! OpenAI Chat Completions (and DeepSeek, and any OpenAI-compatible server): request bodies,
//! answers, streamed chunks (`data: {...}` … `data: [DONE]`) and embeddings.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DecodeError, DecodeResult};
use crate::model::{
    ChatOutput, ChatRequest, EmbedOutput, FinishReason, Role, StreamEvent, TokenUsage, ToolCall,
};

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Msg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'a str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct CallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    function: FuncOut<'a>,
}

#[derive(Serialize)]
struct FuncOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    function: ToolFn<'a>,
}

#[derive(Serialize)]
struct ToolFn<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

/// OpenAI itself wants `max_completion_tokens` (its reasoning models refuse `max_tokens`);
/// DeepSeek and most compatible servers only know `max_tokens`.
pub fn chat_body(
    provider: &str,
    model: &str,
    req: &ChatRequest,
    stream: bool,
) -> Result<Vec<u8>, crate::error::GatewayError> {
    let messages = req
        .messages
        .iter()
        .map(|m| Msg {
            role: m.role.as_str(),
            content: if m.role == Role::Assistant
                && m.content.is_empty()
                && !m.tool_calls.is_empty()
            {
                None
            } else {
                Some(&m.content)
            },
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| CallOut {
                    id: &c.id,
                    kind: "function",
                    function: FuncOut {
                        name: &c.name,
                        arguments: &c.arguments,
                    },
                })
                .collect(),
            tool_call_id: if m.role == Role::Tool {
                m.tool_call_id.as_deref()
            } else {
                None
            },
            name: if m.role == Role::User {
                m.name.as_deref()
            } else {
                None
            },
        })
        .collect();
    let tools = req
        .tools
        .iter()
        .map(|t| Tool {
            kind: "function",
            function: ToolFn {
                name: &t.name,
                description: &t.description,
                parameters: &t.parameters,
            },
        })
        .collect();
    let native = provider == "openai";
    let body = Body {
        model,
        messages,
        tools,
        max_tokens: if native { None } else { req.max_tokens },
        max_completion_tokens: if native { req.max_tokens } else { None },
        temperature: req.temperature,
        stop: &req.stop,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    };
    serde_json::to_vec(&body).map_err(|e| crate::error::GatewayError::Internal(e.to_string()))
}

#[derive(Deserialize)]
struct Resp {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct Choice {
    message: MsgIn,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct MsgIn {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CallIn>>,
}

#[derive(Deserialize)]
struct CallIn {
    #[serde(default)]
    id: String,
    function: FuncIn,
}

#[derive(Deserialize)]
struct FuncIn {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Clone, Copy)]
struct UsageIn {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

pub fn finish_reason(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub fn parse_chat(body: &[u8]) -> Result<ChatOutput, String> {
    let resp: Resp = serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    let choice = resp
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| "no choices in the response".to_string())?;
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: if c.id.is_empty() {
                format!("call_{i}")
            } else {
                c.id
            },
            name: c.function.name,
            arguments: normalise_arguments(c.function.arguments),
        })
        .collect();
    let usage = resp.usage.map_or(TokenUsage::default(), |u| TokenUsage {
        input: u.prompt_tokens,
        output: u.completion_tokens,
    });
    let mut finish = choice
        .finish_reason
        .as_deref()
        .map_or(FinishReason::Stop, finish_reason);
    if !tool_calls.is_empty() && finish == FinishReason::Stop {
        finish = FinishReason::ToolCalls;
    }
    Ok(ChatOutput {
        content: choice.message.content.unwrap_or_default(),
        tool_calls,
        finish,
        usage,
    })
}

/// Empty arguments mean "no arguments": `{}` keeps every consumer's JSON parse working.
pub fn normalise_arguments(args: String) -> String {
    if args.trim().is_empty() {
        "{}".into()
    } else {
        args
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<UsageIn>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<CallDelta>>,
}

#[derive(Deserialize)]
struct CallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<FuncDelta>,
}

#[derive(Deserialize)]
struct FuncDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Default)]
pub struct StreamDecoder {
    calls: BTreeMap<usize, ToolCall>,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
}

impl StreamDecoder {
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        if data == b"[DONE]" {
            self.complete(out);
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_slice(data)
            .map_err(|e| DecodeError::Malformed(format!("invalid stream chunk ({e})")))?;
        if let Some(err) = chunk.error {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error event in the stream")
                .to_owned();
            return Err(DecodeError::Provider {
                status: 500,
                message,
            });
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(TokenUsage {
                input: u.prompt_tokens,
                output: u.completion_tokens,
            });
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content
                    && !text.is_empty()
                {
                    out.push_back(StreamEvent::Text(text));
                }
                for d in delta.tool_calls.unwrap_or_default() {
                    let call = self.calls.entry(d.index).or_insert_with(|| ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                    if let Some(id) = d.id {
                        call.id = id;
                    }
                    if let Some(f) = d.function {
                        if let Some(n) = f.name {
                            call.name.push_str(&n);
                        }
                        if let Some(a) = f.arguments {
                            call.arguments.push_str(&a);
                        }
                    }
                }
            }
            if let Some(f) = choice.finish_reason {
                self.finish = Some(finish_reason(&f));
            }
        }
        Ok(false)
    }

    fn complete(&mut self, out: &mut VecDeque<StreamEvent>) {
        let calls: Vec<ToolCall> = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c.arguments = normalise_arguments(std::mem::take(&mut c.arguments));
                c
            })
            .collect();
        let mut finish = self.finish.unwrap_or(FinishReason::Stop);
        if !calls.is_empty() {
            if finish == FinishReason::Stop {
                finish = FinishReason::ToolCalls;
            }
            out.push_back(StreamEvent::ToolCalls(calls));
        }
        out.push_back(StreamEvent::Finish {
            finish,
            usage: self.usage.unwrap_or_default(),
        });
    }

    /// Some compatible servers close without `[DONE]`: complete if a finish reason came.
    pub fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        if self.finish.is_some() {
            self.complete(out);
            Ok(true)
        } else {
            Err(DecodeError::Malformed("stream ended before [DONE]".into()))
        }
    }
}

#[derive(Deserialize)]
struct EmbedResp {
    data: Vec<EmbedItem>,
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct EmbedItem {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

pub fn parse_embed(body: &[u8]) -> Result<EmbedOutput, String> {
    let mut resp: EmbedResp =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
    resp.data.sort_by_key(|d| d.index);
    Ok(EmbedOutput {
        vectors: resp.data.into_iter().map(|d| d.embedding).collect(),
        input_tokens: resp.usage.map_or(0, |u| u.prompt_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, ToolDef};

    #[test]
    fn body_carries_tools_and_tool_results() {
        let mut assistant = Message::new(Role::Assistant, "");
        assistant.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "get".into(),
            arguments: "{\"a\":1}".into(),
        });
        let mut tool = Message::new(Role::Tool, "42");
        tool.tool_call_id = Some("call_1".into());
        let req = ChatRequest {
            messages: vec![Message::new(Role::User, "hi"), assistant, tool],
            tools: vec![ToolDef {
                name: "get".into(),
                description: "d".into(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            max_tokens: Some(5),
            ..Default::default()
        };
        let v: Value =
            serde_json::from_slice(&chat_body("deepseek", "m", &req, true).unwrap()).unwrap();
        assert_eq!(v["max_tokens"], 5);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"][1]["content"], Value::Null);
        assert_eq!(
            v["messages"][1]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(v["messages"][2]["tool_call_id"], "call_1");
        assert_eq!(v["tools"][0]["type"], "function");
        let v: Value =
            serde_json::from_slice(&chat_body("openai", "m", &req, false).unwrap()).unwrap();
        assert_eq!(v["max_completion_tokens"], 5);
        assert!(v.get("max_tokens").is_none());
    }
}
