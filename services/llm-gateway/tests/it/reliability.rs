//! Retries, fallbacks, timeouts, malformed answers, the circuit breaker, the concurrency limit
//! and cancellation on client disconnect, against fake providers that misbehave on cue.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gathering_llm_gateway::reliability::breaker::BreakerState;
use gathering_testkit::fake_llm::Reply;
use serde_json::{Value, json};

use crate::support::*;

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after_then_succeeds() {
    let env = start().await;
    env.openai.push(Reply::rate_limited(1));
    env.openai.push(Reply::text("finally"));
    let started = Instant::now();
    let resp = env
        .grpc()
        .await
        .complete(request("openai/gpt-4o-mini", "hi"))
        .await
        .unwrap()
        .into_inner();
    let waited = started.elapsed();
    assert_eq!(resp.content, "finally");
    assert_eq!(env.openai.request_count(), 2);
    assert!(
        waited >= Duration::from_millis(950),
        "waited {waited:?}, Retry-After was 1 s"
    );
    let rows = env.usage_rows(1).await;
    assert_eq!(rows[0].get::<_, i32>("attempts"), 2);
    assert_eq!(rows[0].get::<_, String>("status"), "ok");
}

#[tokio::test]
async fn server_errors_exhaust_retries_then_fall_back() {
    let env = start().await;
    for _ in 0..3 {
        env.openai.push(Reply::status(500));
    }
    env.anthropic.push(Reply::text("from the fallback"));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(
            &json!({"model": "openai/gpt-4o-mini", "fallbacks": ["claude-haiku-4-5"],
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from the fallback");
    assert_eq!(v["model"], "anthropic/claude-haiku-4-5-20251001");
    assert_eq!(
        env.openai.request_count(),
        3,
        "first attempt + 2 retries (LLM_MAX_RETRIES=2)"
    );
    assert_eq!(env.anthropic.request_count(), 1);
    let rows = env.usage_rows(1).await;
    assert_eq!(rows[0].get::<_, String>("provider"), "anthropic");
    assert_eq!(rows[0].get::<_, i32>("attempts"), 4);
    assert_eq!(rows[0].get::<_, i32>("models_tried"), 2);

    // Without a fallback, the last error is reported as a bad gateway. (Another model: five
    // failures in a row would open gpt-4o-mini's circuit.)
    for _ in 0..3 {
        env.openai.push(Reply::raw(
            503,
            r#"{"error": {"message": "overloaded, try later"}}"#,
        ));
    }
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat("openai/gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded, try later"),
        "{v}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_nor_fallen_back_from() {
    let env = start().await;
    env.openai.push(Reply::raw(
        400,
        r#"{"error": {"message": "context too long"}}"#,
    ));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(
            &json!({"model": "openai/gpt-4o-mini", "fallbacks": ["claude-haiku-4-5"],
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context too long")
    );
    assert_eq!(env.openai.request_count(), 1);
    assert_eq!(env.anthropic.request_count(), 0);
}

#[tokio::test]
async fn timeout_is_a_deadline_error_and_the_upstream_is_dropped() {
    let env = start().await;
    env.openai.push(Reply::hang());
    let started = Instant::now();
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .header("x-gathering-timeout-ms", "300")
        .json(&chat("openai/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "timeout");
    assert!(
        env.openai.wait_cancelled(1, Duration::from_secs(5)).await,
        "the fake saw the connection close"
    );

    let mut grpc = env.grpc().await;
    env.anthropic.push(Reply::hang());
    let mut req = request("claude-haiku-4-5", "hi");
    req.timeout_ms = 200;
    let err = grpc.complete(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
}

#[tokio::test]
async fn malformed_upstream_json_is_a_clear_error() {
    let env = start_with(&[("LLM_MAX_RETRIES", "0")]).await;
    env.openai.push(Reply::malformed());
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat("openai/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_response");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("openai sent a malformed response"),
        "{message}"
    );

    env.anthropic.push(Reply::malformed());
    let mut grpc = env.grpc().await;
    let mut stream = grpc
        .stream_complete(request("claude-haiku-4-5", "hi"))
        .await
        .unwrap()
        .into_inner();
    let mut error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            error = Some(e);
            break;
        }
    }
    let e = error.expect("the stream ends with an error");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("malformed"), "{}", e.message());

    env.ollama.push(Reply::malformed());
    let err = grpc
        .complete(request("ollama/llama3.2", "hi"))
        .await
        .unwrap_err();
    assert!(err.message().contains("malformed"), "{}", err.message());
}

#[tokio::test]
async fn circuit_opens_then_half_open_probe_closes_it() {
    let env = start_with(&[
        ("LLM_MAX_RETRIES", "0"),
        ("LLM_BREAKER_FAILURES", "2"),
        ("LLM_BREAKER_COOLDOWN_MS", "400"),
    ])
    .await;
    let key = "openai/gpt-4o-mini";
    let breakers = env.gateway().breakers();
    env.openai.push(Reply::status(500));
    env.openai.push(Reply::status(500));
    for _ in 0..2 {
        let r = env
            .http
            .post(env.url("/v1/chat/completions"))
            .json(&chat(key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
    }
    assert_eq!(breakers.state(key), BreakerState::Open);
    // Open: refused at once, the provider is not called; a fallback still answers.
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat(key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "circuit_open");
    assert_eq!(env.openai.request_count(), 2);
    env.anthropic.push(Reply::text("fallback while open"));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": key, "fallbacks": ["claude-haiku-4-5"], "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.openai.request_count(), 2);

    // After the cooldown one probe goes through; a failing probe re-opens the circuit.
    tokio::time::sleep(Duration::from_millis(450)).await;
    env.openai.push(Reply::status(500));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat(key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(env.openai.request_count(), 3);
    assert_eq!(breakers.state(key), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(450)).await;
    env.openai.push(Reply::text("recovered"));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat(key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(breakers.state(key), BreakerState::Closed);
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat(key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "closed again: calls flow");
    // Another model of the same provider was never affected.
    assert_eq!(breakers.state("openai/gpt-4.1"), BreakerState::Closed);
}

#[tokio::test]
async fn concurrency_limit_per_provider_refuses_beyond_the_queue_wait() {
    let env = start_with(&[
        ("LLM_MAX_CONCURRENCY_PER_PROVIDER", "1"),
        ("LLM_QUEUE_TIMEOUT_MS", "150"),
    ])
    .await;
    env.openai
        .push(Reply::text("slow").delay(Duration::from_millis(800)));
    let first = {
        let http = env.http.clone();
        let url = env.url("/v1/chat/completions");
        tokio::spawn(async move {
            http.post(url)
                .json(&chat("openai/gpt-4o-mini"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    assert!(env.openai.wait_requests(1, Duration::from_secs(5)).await);
    assert_eq!(env.gateway().limits().in_flight("openai"), 1);
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat("openai/gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    // Another provider is not limited by OpenAI's slots.
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&chat("claude-haiku-4-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(first.await.unwrap(), 200);
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let env = start().await;
    // HTTP, not streaming: the client gives up after 200 ms.
    env.openai.push(Reply::hang());
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .timeout(Duration::from_millis(200))
        .json(&chat("openai/gpt-4o-mini"))
        .send()
        .await;
    assert!(r.is_err());
    assert!(
        env.openai.wait_cancelled(1, Duration::from_secs(5)).await,
        "HTTP: upstream closed"
    );

    // HTTP streaming: the client reads a few deltas then drops the response.
    env.anthropic
        .push(Reply::stall_stream("partial answer then silence"));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "claude-haiku-4-5", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().starts_with("data: "));
    drop(body);
    assert!(
        env.anthropic
            .wait_cancelled(1, Duration::from_secs(5))
            .await,
        "SSE: upstream closed"
    );

    // gRPC unary: the client's deadline cancels the call.
    env.ollama.push(Reply::hang());
    let mut grpc = env.grpc().await;
    let mut req = tonic::Request::new(request("ollama/llama3.2", "hi"));
    req.set_timeout(Duration::from_millis(200));
    assert!(grpc.complete(req).await.is_err());
    assert!(
        env.ollama.wait_cancelled(1, Duration::from_secs(5)).await,
        "gRPC: upstream closed"
    );

    // gRPC stream dropped mid-way.
    env.deepseek
        .push(Reply::stall_stream("some words and then nothing"));
    let mut stream = grpc
        .stream_complete(request("deepseek-chat", "hi"))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    assert!(
        env.deepseek.wait_cancelled(1, Duration::from_secs(5)).await,
        "gRPC stream: upstream closed"
    );

    // Each abandoned call is recorded as cancelled.
    let rows = env.usage_rows(4).await;
    let cancelled = rows
        .iter()
        .filter(|r| r.get::<_, String>("status") == "cancelled")
        .count();
    assert_eq!(cancelled, 4, "{} rows", rows.len());
}
