//! OpenAI Chat Completions as the fake speaks it (DeepSeek speaks the same).

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{Answer, wants_stream};
use super::{Reply, ReplyBody, Wire, deltas, derived_embedding, halves};

fn model_of(body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

fn invalid(message: &str) -> Answer {
    Answer::Json(
        StatusCode::BAD_REQUEST,
        super::server::error_body(Wire::OpenAi, 400, message),
    )
}

pub(crate) fn chat(body: &Value, reply: &Reply) -> Answer {
    if body.get("model").and_then(Value::as_str).is_none() {
        return invalid("you must provide a model parameter");
    }
    match body.get("messages").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => {}
        _ => return invalid("'messages' must be a non-empty array"),
    }
    let model = model_of(body);
    let stream = wants_stream(Wire::OpenAi, body);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (input, output) = reply.usage;
    let usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
    let Some((text, calls)) = text_and_calls(&reply.body) else {
        return malformed(stream);
    };
    let finish = reply.finish.clone().unwrap_or_else(|| {
        if calls.is_empty() {
            "stop".into()
        } else {
            "tool_calls".into()
        }
    });
    if !stream {
        return completion(&model, text, &calls, finish, usage);
    }
    let stalls = matches!(reply.body, ReplyBody::StallStream(_));
    let usage = include_usage.then_some(usage);
    streamed(&model, &text, &calls, finish, stalls, usage)
}

/// A tool call as the fake answers it: id, name and arguments (JSON text).
type Call = (String, String, String);

/// The reply's text and tool calls (`call_{n}` when the script gives no id); `None` for a
/// malformed reply.
fn text_and_calls(body: &ReplyBody) -> Option<(String, Vec<Call>)> {
    Some(match body {
        ReplyBody::Text(t) => (t.clone(), vec![]),
        ReplyBody::ToolCalls { text, calls } => (
            text.clone(),
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let id = if c.id.is_empty() {
                        format!("call_{}", i + 1)
                    } else {
                        c.id.clone()
                    };
                    (id, c.name.clone(), c.arguments.to_string())
                })
                .collect(),
        ),
        ReplyBody::Malformed => return None,
        ReplyBody::StallStream(t) => (t.clone(), vec![]),
        ReplyBody::Embeddings(_) | ReplyBody::Raw(_) | ReplyBody::Hang => (String::new(), vec![]),
    })
}

/// An answer cut off in the middle of its JSON.
fn malformed(stream: bool) -> Answer {
    if stream {
        Answer::Stream {
            content_type: "text/event-stream",
            chunks: vec![Bytes::from_static(b"data: {\"choices\": [{\"delta\": \n\n")],
            stall: false,
        }
    } else {
        Answer::Json(
            StatusCode::OK,
            Bytes::from_static(b"{\"id\": \"chatcmpl-x\", \"choices\": [tru"),
        )
    }
}

/// The whole completion at once.
fn completion(model: &str, text: String, calls: &[Call], finish: String, usage: Value) -> Answer {
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .iter()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
    }
    let v = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
        "system_fingerprint": "fp_fake",
    });
    Answer::Json(StatusCode::OK, Bytes::from(v.to_string()))
}

/// The completion as server-sent chunks: the text in deltas, then each tool call with its
/// arguments in two fragments, then the usage when asked for (`include_usage`). A stalling
/// reply stops after the text, without ending.
fn streamed(
    model: &str,
    text: &str,
    calls: &[Call],
    finish: String,
    stalls: bool,
    usage: Option<Value>,
) -> Answer {
    let chunk = |delta: Value, finish: Value| -> Bytes {
        let v = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        Bytes::from(format!("data: {v}\n\n"))
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    if !text.is_empty() {
        for d in deltas(text) {
            chunks.push(chunk(json!({"content": d}), Value::Null));
        }
    }
    if stalls {
        return Answer::Stream {
            content_type: "text/event-stream",
            chunks,
            stall: true,
        };
    }
    for (i, (id, name, args)) in calls.iter().enumerate() {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        // Arguments arrive in fragments, as OpenAI sends them.
        for part in halves(args) {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                Value::Null,
            ));
        }
    }
    chunks.push(chunk(json!({}), Value::String(finish)));
    if let Some(usage) = usage {
        let v = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": usage,
        });
        chunks.push(Bytes::from(format!("data: {v}\n\n")));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Answer::Stream {
        content_type: "text/event-stream",
        chunks,
        stall: false,
    }
}

pub(crate) fn embeddings(body: &Value, reply: &Reply, dims: usize) -> Answer {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        _ => return invalid("'input' is required"),
    };
    if let ReplyBody::Malformed = reply.body {
        return Answer::Json(
            StatusCode::OK,
            Bytes::from_static(b"{\"data\": [{\"embedding\": [0.1,"),
        );
    }
    let vectors: Vec<Vec<f32>> = match &reply.body {
        ReplyBody::Embeddings(Some(v)) => v.clone(),
        _ => inputs.iter().map(|i| derived_embedding(i, dims)).collect(),
    };
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    let tokens = reply.usage.0;
    let v = json!({
        "object": "list",
        "data": data,
        "model": model_of(body),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Answer::Json(StatusCode::OK, Bytes::from(v.to_string()))
}

pub(crate) fn models(models: &[String]) -> Answer {
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}))
        .collect();
    Answer::Json(
        StatusCode::OK,
        Bytes::from(json!({"object": "list", "data": data}).to_string()),
    )
}
