//! Ollama's native API as the fake speaks it: `/api/chat` (NDJSON stream unless
//! `"stream": false`), `/api/embed`, `/api/tags`.

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{Answer, wants_stream};
use super::{Reply, ReplyBody, Wire, deltas, derived_embedding};

const CREATED_AT: &str = "2025-01-01T00:00:00.000000Z";

fn invalid(message: &str) -> Answer {
    Answer::Json(
        StatusCode::BAD_REQUEST,
        super::server::error_body(Wire::Ollama, 400, message),
    )
}

pub(crate) fn chat(body: &Value, reply: &Reply) -> Answer {
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return invalid("model is required");
    };
    if body.get("messages").and_then(Value::as_array).is_none() {
        return invalid("messages is required");
    }
    let stream = wants_stream(Wire::Ollama, body);
    let (input, output) = reply.usage;
    let (text, calls): (String, Vec<Value>) = match &reply.body {
        ReplyBody::Text(t) | ReplyBody::StallStream(t) => (t.clone(), vec![]),
        ReplyBody::ToolCalls { text, calls } => (
            text.clone(),
            calls
                .iter()
                .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                .collect(),
        ),
        ReplyBody::Malformed => {
            return if stream {
                Answer::Stream {
                    content_type: "application/x-ndjson",
                    chunks: vec![Bytes::from_static(
                        b"{\"model\": \"x\", \"message\": {\"content\n",
                    )],
                    stall: false,
                }
            } else {
                Answer::Json(
                    StatusCode::OK,
                    Bytes::from_static(b"{\"model\": \"x\", \"mess"),
                )
            };
        }
        ReplyBody::Embeddings(_) | ReplyBody::Raw(_) | ReplyBody::Hang => (String::new(), vec![]),
    };
    let done_reason = reply.finish.clone().unwrap_or_else(|| "stop".into());
    let final_fields = |message: Value| {
        json!({
            "model": model, "created_at": CREATED_AT, "message": message,
            "done": true, "done_reason": done_reason,
            "total_duration": 1_000_000, "load_duration": 1000,
            "prompt_eval_count": input, "prompt_eval_duration": 1000,
            "eval_count": output, "eval_duration": 1000,
        })
    };
    if !stream {
        let mut message = json!({"role": "assistant", "content": text});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        return Answer::Json(
            StatusCode::OK,
            Bytes::from(final_fields(message).to_string()),
        );
    }
    let line = |v: Value| Bytes::from(format!("{v}\n"));
    let mut chunks = Vec::new();
    if !text.is_empty() {
        for d in deltas(&text) {
            chunks.push(line(json!({
                "model": model, "created_at": CREATED_AT,
                "message": {"role": "assistant", "content": d}, "done": false,
            })));
        }
    }
    if let ReplyBody::StallStream(_) = reply.body {
        return Answer::Stream {
            content_type: "application/x-ndjson",
            chunks,
            stall: true,
        };
    }
    if !calls.is_empty() {
        chunks.push(line(json!({
            "model": model, "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": false,
        })));
    }
    chunks.push(line(final_fields(
        json!({"role": "assistant", "content": ""}),
    )));
    Answer::Stream {
        content_type: "application/x-ndjson",
        chunks,
        stall: false,
    }
}

pub(crate) fn embed(body: &Value, reply: &Reply, dims: usize) -> Answer {
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return invalid("model is required");
    };
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
        _ => return invalid("input is required"),
    };
    if let ReplyBody::Malformed = reply.body {
        return Answer::Json(
            StatusCode::OK,
            Bytes::from_static(b"{\"embeddings\": [[0.1"),
        );
    }
    let vectors: Vec<Vec<f32>> = match &reply.body {
        ReplyBody::Embeddings(Some(v)) => v.clone(),
        _ => inputs.iter().map(|i| derived_embedding(i, dims)).collect(),
    };
    let v = json!({
        "model": model, "embeddings": vectors,
        "total_duration": 1000, "load_duration": 100, "prompt_eval_count": reply.usage.0,
    });
    Answer::Json(StatusCode::OK, Bytes::from(v.to_string()))
}

pub(crate) fn tags(models: &[String]) -> Answer {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({"name": format!("{m}:latest"), "model": format!("{m}:latest"),
                        "modified_at": CREATED_AT, "size": 1, "digest": "fake",
                        "details": {"format": "gguf", "family": "fake"}})
        })
        .collect();
    Answer::Json(
        StatusCode::OK,
        Bytes::from(json!({"models": data}).to_string()),
    )
}
