//! `POST /v1/chat/completions`: OpenAI's request in, the normalised call through the engine,
//! OpenAI's response (or `chat.completion.chunk` SSE events ending with `data: [DONE]`) out.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiState, authorize, caller, deadline, rate_headers, unix_now};
use crate::access::RateInfo;
use crate::cache::CacheMode;
use crate::engine::Completion;
use crate::error::GatewayError;
use crate::model::{
    ChatCall, ChatRequest, Message, Role, StreamEvent, ToolCall, ToolDef, request_id,
};

#[derive(Deserialize)]
struct ChatBody {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    tools: Vec<InTool>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    stop: Option<Stop>,
    user: Option<String>,
    /// Extension: models tried in order when `model` fails.
    #[serde(default)]
    fallbacks: Vec<String>,
    /// Extension: `true` caches this request whatever its temperature, `false` never; absent,
    /// requests at temperature 0 are cached.
    cache: Option<bool>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<InCall>,
    tool_call_id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct InCall {
    #[serde(default)]
    id: String,
    function: InFunction,
}

#[derive(Deserialize)]
struct InFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct InTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    function: InToolFn,
}

#[derive(Deserialize)]
struct InToolFn {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

fn text_of(content: Option<Content>) -> Result<String, GatewayError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(t)) => Ok(t),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            for p in parts {
                if p.kind != "text" {
                    return Err(GatewayError::InvalidRequest(format!(
                        "content part type '{}' is not supported (text only)",
                        crate::model::truncate(&p.kind, 40)
                    )));
                }
                out.push_str(p.text.as_deref().unwrap_or(""));
            }
            Ok(out)
        }
    }
}

/// A parsed body.
struct Parsed {
    model: String,
    fallbacks: Vec<String>,
    request: ChatRequest,
    stream: bool,
    include_usage: bool,
    user: Option<String>,
    cache: CacheMode,
}

fn to_request(body: ChatBody) -> Result<Parsed, GatewayError> {
    let messages = body
        .messages
        .into_iter()
        .map(|m| {
            Ok(Message {
                role: Role::parse(&m.role)?,
                content: text_of(m.content)?,
                tool_calls: m
                    .tool_calls
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: crate::provider::openai::normalise_arguments(
                            c.function.arguments,
                        ),
                    })
                    .collect(),
                tool_call_id: m.tool_call_id,
                name: m.name,
            })
        })
        .collect::<Result<Vec<_>, GatewayError>>()?;
    let tools = body
        .tools
        .into_iter()
        .map(|t| {
            if t.kind.as_deref().is_some_and(|k| k != "function") {
                return Err(GatewayError::InvalidRequest(
                    "only function tools are supported".into(),
                ));
            }
            Ok(ToolDef {
                name: t.function.name,
                description: t.function.description.unwrap_or_default(),
                parameters: t
                    .function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect::<Result<Vec<_>, GatewayError>>()?;
    let stop = match body.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    let include_usage = body.stream_options.is_some_and(|o| o.include_usage);
    Ok(Parsed {
        model: body.model,
        fallbacks: body.fallbacks,
        request: ChatRequest {
            messages,
            tools,
            max_tokens: body.max_completion_tokens.or(body.max_tokens),
            temperature: body.temperature,
            stop,
        },
        stream: body.stream,
        include_usage,
        user: body.user,
        cache: match body.cache {
            Some(true) => CacheMode::On,
            Some(false) => CacheMode::Off,
            None => CacheMode::Auto,
        },
    })
}

pub async fn handle(
    State(state): State<ApiState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let id = request_id(super::header(&headers, "x-request-id"));
    let fail = |error: GatewayError| ApiError {
        error,
        request_id: Some(id.clone()),
    };
    let principal = authorize(&state, &headers).map_err(fail)?;
    let body: ChatBody = serde_json::from_slice(&raw)
        .map_err(|e| fail(GatewayError::InvalidRequest(format!("invalid body: {e}"))))?;
    let parsed = to_request(body).map_err(fail)?;
    let call = ChatCall {
        model: parsed.model,
        fallbacks: parsed.fallbacks,
        request: parsed.request,
        caller: caller(&headers, parsed.user).map_err(fail)?,
        request_id: id.clone(),
        deadline: deadline(&state, &headers).map_err(fail)?,
        principal,
        cache: parsed.cache,
    };
    if parsed.stream {
        let stream = state.gateway.stream(call).await.map_err(fail)?;
        return Ok(sse(stream, parsed.include_usage));
    }
    let done = state.gateway.complete(call).await.map_err(fail)?;
    Ok(json_response(done))
}

#[derive(Serialize)]
struct OutResponse<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [OutChoice<'a>; 1],
    usage: OutUsage,
    system_fingerprint: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mock: bool,
    /// Extension: answered from the response cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    /// Extension: the cost in USD by the catalogue's prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    message: OutMessage<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutCall<'a>>,
}

#[derive(Serialize)]
struct OutCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

fn out_calls(calls: &[ToolCall], indexed: bool) -> Vec<OutCall<'_>> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| OutCall {
            index: indexed.then_some(i),
            id: &c.id,
            kind: "function",
            function: OutFunction {
                name: &c.name,
                arguments: &c.arguments,
            },
        })
        .collect()
}

fn fingerprint(mock: bool) -> &'static str {
    if mock { "gathering-mock" } else { "gathering" }
}

fn json_response(done: Completion) -> Response {
    let out = &done.output;
    let body = OutResponse {
        id: format!("chatcmpl-{}", done.request_id),
        object: "chat.completion",
        created: unix_now(),
        model: &done.model,
        choices: [OutChoice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content: if out.content.is_empty() && !out.tool_calls.is_empty() {
                    None
                } else {
                    Some(&out.content)
                },
                tool_calls: out_calls(&out.tool_calls, false),
            },
            finish_reason: out.finish.as_str(),
        }],
        usage: OutUsage {
            prompt_tokens: out.usage.input,
            completion_tokens: out.usage.output,
            total_tokens: out.usage.input.saturating_add(out.usage.output),
        },
        system_fingerprint: fingerprint(done.mock),
        mock: done.mock,
        cached: done.cache == Some(true),
        cost_usd: done.cost_usd,
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::from(GatewayError::Internal(e.to_string())).into_response(),
    };
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response();
    decorate(
        response.headers_mut(),
        &done.request_id,
        done.mock,
        done.cache,
        done.rate.as_ref(),
    );
    response
}

fn decorate(
    headers: &mut HeaderMap,
    request_id: &str,
    mock: bool,
    cache: Option<bool>,
    rate: Option<&RateInfo>,
) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    if mock {
        headers.insert("x-gathering-mock", HeaderValue::from_static("true"));
    }
    match cache {
        Some(true) => headers.insert("x-gathering-cache", HeaderValue::from_static("hit")),
        Some(false) => headers.insert("x-gathering-cache", HeaderValue::from_static("miss")),
        None => None,
    };
    rate_headers(headers, rate);
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OutUsage>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mock: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutCall<'a>>,
}

fn event(chunk: &OutChunk<'_>) -> Bytes {
    let mut out = b"data: ".to_vec();
    if serde_json::to_writer(&mut out, chunk).is_err() {
        return Bytes::new();
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The SSE response. The stream owns the upstream response: when the client goes away the
/// body is dropped, and with it the upstream request.
fn sse(stream: crate::engine::ChatStream, include_usage: bool) -> Response {
    let id = format!("chatcmpl-{}", stream.request_id);
    let model = stream.model.clone();
    let mock = stream.mock;
    let cached = stream.cache == Some(true);
    let cache = stream.cache;
    let rate = stream.rate;
    let request_id = stream.request_id.clone();
    let created = unix_now();
    let chunk = move |delta: Delta<'_>, finish: Option<&'static str>| -> Bytes {
        event(&OutChunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &model,
            system_fingerprint: fingerprint(mock),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
            mock,
            cached,
        })
    };
    let usage_id = format!("chatcmpl-{}", stream.request_id);
    let usage_model = stream.model.clone();
    let first = chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Default::default()
        },
        None,
    );
    let events = stream.flat_map(move |item| {
        let mut out: Vec<Result<Bytes, Infallible>> = Vec::new();
        match item {
            Ok(StreamEvent::Text(t)) => out.push(Ok(chunk(
                Delta {
                    content: Some(&t),
                    ..Default::default()
                },
                None,
            ))),
            Ok(StreamEvent::ToolCalls(calls)) => out.push(Ok(chunk(
                Delta {
                    tool_calls: out_calls(&calls, true),
                    ..Default::default()
                },
                None,
            ))),
            Ok(StreamEvent::Finish { finish, usage }) => {
                out.push(Ok(chunk(Delta::default(), Some(finish.as_str()))));
                if include_usage {
                    out.push(Ok(event(&OutChunk {
                        id: &usage_id,
                        object: "chat.completion.chunk",
                        created,
                        model: &usage_model,
                        system_fingerprint: fingerprint(mock),
                        choices: Vec::new(),
                        usage: Some(OutUsage {
                            prompt_tokens: usage.input,
                            completion_tokens: usage.output,
                            total_tokens: usage.input.saturating_add(usage.output),
                        }),
                        mock,
                        cached,
                    })));
                }
                out.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
            }
            Err(e) => {
                let body = super::errors::body(&e);
                out.push(Ok(Bytes::from(format!("data: {body}\n\n"))));
            }
        }
        futures_util::stream::iter(out)
    });
    let body = futures_util::stream::once(async move { Ok::<_, Infallible>(first) }).chain(events);
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    decorate(h, &request_id, mock, cache, rate.as_ref());
    response
}
