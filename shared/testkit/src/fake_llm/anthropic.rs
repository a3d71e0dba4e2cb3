//! The Anthropic Messages API as the fake speaks it, with the checks the real API makes on
//! what the gateway sends (version header, `max_tokens`, roles, tool_result placement).

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{Answer, wants_stream};
use super::{Reply, ReplyBody, Wire, deltas, halves};

fn invalid(message: &str) -> Answer {
    Answer::Json(
        StatusCode::BAD_REQUEST,
        super::server::error_body(Wire::Anthropic, 400, message),
    )
}

/// The request checks of the real API that matter for a client: a wrong shape is a 400.
fn validate(body: &Value) -> Result<(), String> {
    if body.get("model").and_then(Value::as_str).is_none() {
        return Err("model: Field required".into());
    }
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Err("max_tokens: Field required".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: Field required")?;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if let Some(blocks) = m.get("content").and_then(Value::as_array) {
            for b in blocks {
                let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
                if kind == "tool_result" && role != "user" {
                    return Err(format!(
                        "messages.{i}: tool_result blocks must be in a user message"
                    ));
                }
                if kind == "tool_use" && role != "assistant" {
                    return Err(format!(
                        "messages.{i}: tool_use blocks must be in an assistant message"
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn messages(body: &Value, reply: &Reply) -> Answer {
    if let Err(e) = validate(body) {
        return invalid(&e);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let stream = wants_stream(Wire::Anthropic, body);
    let Some((text, calls)) = text_and_calls(&reply.body) else {
        return malformed(stream);
    };
    let stop = reply.finish.clone().unwrap_or_else(|| {
        if calls.is_empty() {
            "end_turn".into()
        } else {
            "tool_use".into()
        }
    });
    if stream {
        streamed(&model, &text, &calls, &stop, reply)
    } else {
        message(&model, &text, &calls, &stop, reply.usage)
    }
}

/// A tool call as the fake answers it: id, name and input.
type Call = (String, String, Value);

/// The reply's text and tool calls (`toolu_{n}` when the script gives no id); `None` for a
/// malformed reply.
fn text_and_calls(body: &ReplyBody) -> Option<(String, Vec<Call>)> {
    Some(match body {
        ReplyBody::Text(t) | ReplyBody::StallStream(t) => (t.clone(), vec![]),
        ReplyBody::ToolCalls { text, calls } => (
            text.clone(),
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let id = if c.id.is_empty() {
                        format!("toolu_{}", i + 1)
                    } else {
                        c.id.clone()
                    };
                    (id, c.name.clone(), c.arguments.clone())
                })
                .collect(),
        ),
        ReplyBody::Malformed => return None,
        ReplyBody::Embeddings(_) | ReplyBody::Raw(_) | ReplyBody::Hang => (String::new(), vec![]),
    })
}

/// An answer cut off in the middle of its JSON.
fn malformed(stream: bool) -> Answer {
    if stream {
        Answer::Stream {
            content_type: "text/event-stream",
            chunks: vec![Bytes::from_static(
                b"event: message_start\ndata: {\"type\": \"message_start\", \"message\": \n\n",
            )],
            stall: false,
        }
    } else {
        Answer::Json(
            StatusCode::OK,
            Bytes::from_static(b"{\"type\": \"message\", \"content\": [{\"type\": "),
        )
    }
}

/// The whole message at once.
fn message(model: &str, text: &str, calls: &[Call], stop: &str, usage: (u32, u32)) -> Answer {
    let (input, output) = usage;
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for (id, name, args) in calls {
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": args}));
    }
    let v = json!({
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": output,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    });
    Answer::Json(StatusCode::OK, Bytes::from(v.to_string()))
}

/// One server-sent event.
fn event(name: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The message as server-sent events: its text block, then a block per tool call. A stalling
/// reply stops after the text, without ending.
fn streamed(model: &str, text: &str, calls: &[Call], stop: &str, reply: &Reply) -> Answer {
    let (input, output) = reply.usage;
    let mut chunks = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    if !text.is_empty() {
        chunks.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ));
        chunks.push(event("ping", json!({"type": "ping"})));
        for d in deltas(text) {
            chunks.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": d}}),
            ));
        }
        if let ReplyBody::StallStream(_) = reply.body {
            return Answer::Stream {
                content_type: "text/event-stream",
                chunks,
                stall: true,
            };
        }
        chunks.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for call in calls {
        tool_use_block(&mut chunks, index, call);
        index += 1;
    }
    chunks.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": output}}),
    ));
    chunks.push(event("message_stop", json!({"type": "message_stop"})));
    Answer::Stream {
        content_type: "text/event-stream",
        chunks,
        stall: false,
    }
}

/// A `tool_use` block's events: its input arrives as JSON in two fragments.
fn tool_use_block(chunks: &mut Vec<Bytes>, index: usize, (id, name, args): &Call) {
    chunks.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": index,
               "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    ));
    let s = args.to_string();
    for part in halves(&s) {
        chunks.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index,
                   "delta": {"type": "input_json_delta", "partial_json": part}}),
        ));
    }
    chunks.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    ));
}

pub(crate) fn models(models: &[String]) -> Answer {
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    Answer::Json(
        StatusCode::OK,
        Bytes::from(
            json!({"data": data, "has_more": false, "first_id": null, "last_id": null}).to_string(),
        ),
    )
}
