//! The HTTP side of the fakes: accepts connections, records requests, applies the scripted
//! reply's status, headers, delay or hang, and turns a wire module's answer into a response
//! (one JSON body, or a stream of events sent through a channel so that a caller going away
//! is noticed).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{Recorded, Reply, ReplyBody, State, Wire, anthropic, ollama, openai};

type Body = BoxBody<Bytes, Infallible>;

/// Largest request body the fake reads.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What a wire module answers with.
pub(crate) enum Answer {
    Json(StatusCode, Bytes),
    /// Stream chunks; `stall` keeps the stream open forever after the last chunk.
    Stream {
        content_type: &'static str,
        chunks: Vec<Bytes>,
        stall: bool,
    },
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, state.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts the request as abandoned when dropped before `done`.
struct CancelGuard {
    state: Arc<State>,
    done: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.done {
            self.state.note_cancelled();
        }
    }
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    if let Some((plain, streamed)) = &state.canned {
        return Ok(canned_answer(req, state.wire, plain, streamed).await);
    }
    let mut guard = CancelGuard {
        state: state.clone(),
        done: false,
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw = match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            guard.done = true;
            return Ok(json(
                StatusCode::PAYLOAD_TOO_LARGE,
                Bytes::from_static(b"{}"),
            ));
        }
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body: body.clone(),
        raw_body: String::from_utf8_lossy(&raw).into_owned(),
    };
    let key_ok = key_accepted(&state, &recorded);
    if let Ok(mut r) = state.requests.lock() {
        r.push(recorded);
    }
    state.changed.notify_waiters();

    if let Err(given) = key_ok {
        guard.done = true;
        let body = error_body(
            state.wire,
            401,
            &format!("Incorrect API key provided: {given}"),
        );
        return Ok(json(StatusCode::UNAUTHORIZED, body));
    }

    let wire = state.wire;
    let route = (method.clone(), path.as_str());
    let generation = matches!(
        (wire, &route),
        (Wire::OpenAi, (Method::POST, "/v1/chat/completions"))
            | (Wire::OpenAi, (Method::POST, "/v1/embeddings"))
            | (Wire::Anthropic, (Method::POST, "/v1/messages"))
            | (Wire::Ollama, (Method::POST, "/api/chat"))
            | (Wire::Ollama, (Method::POST, "/api/embed"))
    );
    let answer = if generation {
        let reply = state.next_reply(&body);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if matches!(reply.body, ReplyBody::Hang) {
            std::future::pending::<()>().await;
        }
        if reply.status != 200 {
            guard.done = true;
            let body = match &reply.body {
                ReplyBody::Raw(raw) if !raw.is_empty() => Bytes::from(raw.clone()),
                _ => error_body(wire, reply.status, "scripted failure"),
            };
            return Ok(with_headers(
                json(
                    StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body,
                ),
                &reply,
            ));
        }
        let dims = state
            .embedding_dimensions
            .load(std::sync::atomic::Ordering::SeqCst);
        let answer = match (wire, path.as_str()) {
            (Wire::OpenAi, "/v1/chat/completions") => openai::chat(&body, &reply),
            (Wire::OpenAi, _) => openai::embeddings(&body, &reply, dims),
            (Wire::Anthropic, _) => anthropic::messages(&body, &reply),
            (Wire::Ollama, "/api/chat") => ollama::chat(&body, &reply),
            (Wire::Ollama, _) => ollama::embed(&body, &reply, dims),
        };
        let response = respond(answer, &state);
        guard.done = true;
        return Ok(with_headers(response, &reply));
    } else {
        let models = state.models.lock().map(|m| m.clone()).unwrap_or_default();
        match (wire, route) {
            (Wire::OpenAi, (Method::GET, "/v1/models")) => openai::models(&models),
            (Wire::Anthropic, (Method::GET, "/v1/models")) => anthropic::models(&models),
            (Wire::Ollama, (Method::GET, "/api/tags")) => ollama::tags(&models),
            _ => Answer::Json(
                StatusCode::NOT_FOUND,
                error_body(wire, 404, &format!("no route {method} {path}")),
            ),
        }
    };
    guard.done = true;
    Ok(respond(answer, &state))
}

fn key_accepted(state: &State, req: &Recorded) -> Result<(), String> {
    let required = state.required_key.lock().ok().and_then(|k| k.clone());
    let Some(required) = required else {
        return Ok(());
    };
    let given = match state.wire {
        Wire::Anthropic => req.header("x-api-key").unwrap_or("").to_owned(),
        Wire::OpenAi | Wire::Ollama => req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned(),
    };
    if given == required {
        Ok(())
    } else {
        Err(given)
    }
}

/// The provider's usual error body for `status`.
pub(crate) fn error_body(wire: Wire, status: u16, message: &str) -> Bytes {
    let kind = match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let v = match wire {
        Wire::OpenAi => serde_json::json!({
            "error": {"message": message, "type": kind, "param": null, "code": null}
        }),
        Wire::Anthropic => serde_json::json!({
            "type": "error", "error": {"type": kind, "message": message}
        }),
        Wire::Ollama => serde_json::json!({"error": message}),
    };
    Bytes::from(v.to_string())
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn with_headers(mut r: Response<Body>, reply: &Reply) -> Response<Body> {
    for (k, v) in &reply.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn respond(answer: Answer, state: &Arc<State>) -> Response<Body> {
    match answer {
        Answer::Json(status, body) => json(status, body),
        Answer::Stream {
            content_type,
            chunks,
            stall,
        } => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
            let state = state.clone();
            tokio::spawn(async move {
                for chunk in chunks {
                    if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                        state.note_cancelled();
                        return;
                    }
                }
                if stall {
                    tx.closed().await;
                    state.note_cancelled();
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            let mut r = Response::new(StreamBody::new(stream).boxed());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            r.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            r
        }
    }
}

/// Whether a request body asks for a stream, the way the wire decides it.
pub(crate) fn wants_stream(wire: Wire, body: &Value) -> bool {
    match wire {
        Wire::Ollama => body.get("stream").and_then(Value::as_bool).unwrap_or(true),
        Wire::OpenAi | Wire::Anthropic => {
            body.get("stream").and_then(Value::as_bool).unwrap_or(false)
        }
    }
}

/// Precomputed answers of canned mode.
pub(crate) fn canned(wire: Wire) -> (Bytes, Bytes) {
    let reply = Reply::text("ok");
    let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
    let plain = serde_json::json!({"model": "canned", "stream": false, "max_tokens": 16, "messages": messages});
    let streamed = serde_json::json!({"model": "canned", "stream": true, "max_tokens": 16, "messages": messages,
                                      "stream_options": {"include_usage": true}});
    let render = |body: &Value| -> Bytes {
        let answer = match wire {
            Wire::OpenAi => openai::chat(body, &reply),
            Wire::Anthropic => anthropic::messages(body, &reply),
            Wire::Ollama => ollama::chat(body, &reply),
        };
        match answer {
            Answer::Json(_, b) => b,
            Answer::Stream { chunks, .. } => chunks.concat().into(),
        }
    };
    (render(&plain), render(&streamed))
}

async fn canned_answer(
    req: Request<Incoming>,
    wire: Wire,
    plain: &Bytes,
    streamed: &Bytes,
) -> Response<Body> {
    let models_route = req.method() == Method::GET;
    let raw = match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return json(StatusCode::PAYLOAD_TOO_LARGE, Bytes::from_static(b"{}")),
    };
    if models_route {
        let answer = match wire {
            Wire::OpenAi => openai::models(&["canned".to_string()]),
            Wire::Anthropic => anthropic::models(&["canned".to_string()]),
            Wire::Ollama => ollama::tags(&["canned".to_string()]),
        };
        return match answer {
            Answer::Json(s, b) => json(s, b),
            Answer::Stream { .. } => json(StatusCode::OK, Bytes::new()),
        };
    }
    let stream = match wire {
        Wire::Ollama => !contains(&raw, b"\"stream\":false"),
        _ => contains(&raw, b"\"stream\":true"),
    };
    if stream {
        let mut r = json(StatusCode::OK, streamed.clone());
        let ct = if wire == Wire::Ollama {
            "application/x-ndjson"
        } else {
            "text/event-stream"
        };
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(ct),
        );
        r
    } else {
        json(StatusCode::OK, plain.clone())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
