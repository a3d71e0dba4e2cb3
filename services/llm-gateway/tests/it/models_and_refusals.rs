//! Through gRPC and the HTTP API: embeddings, model listing, bad requests refused before any
//! provider call, the mock provider only when enabled, and the canned fake used by benchmarks.

use futures_util::StreamExt;
use gathering_proto::v1 as pb;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn embeddings_through_openai_and_ollama() {
    let env = start().await;
    let mut grpc = env.grpc().await;
    let resp = grpc
        .embed(pb::EmbedRequest {
            model: "text-embedding-3-small".into(),
            inputs: vec!["alpha".into(), "beta".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.embeddings.len(), 2);
    assert_eq!(
        resp.embeddings[0].values,
        gathering_testkit::fake_llm::derived_embedding("alpha", 8)
    );
    assert_eq!(resp.model, "openai/text-embedding-3-small");
    let sent = &env.openai.requests()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["input"], json!(["alpha", "beta"]));

    let resp = grpc
        .embed(pb::EmbedRequest {
            model: "ollama/nomic-embed-text".into(),
            inputs: vec!["gamma".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.embeddings[0].values,
        gathering_testkit::fake_llm::derived_embedding("gamma", 8)
    );
    assert_eq!(env.ollama.requests()[0].path, "/api/embed");

    // HTTP, base64 as the OpenAI Python SDK asks by default.
    let body: Value = env
        .http
        .post(env.url("/v1/embeddings"))
        .json(&json!({"model": "text-embedding-3-small", "input": "alpha", "encoding_format": "base64"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = raw
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        floats,
        gathering_testkit::fake_llm::derived_embedding("alpha", 8)
    );

    // Anthropic has no embeddings API: a clear 400, nothing sent.
    let r = env
        .http
        .post(env.url("/v1/embeddings"))
        .json(&json!({"model": "anthropic/claude-haiku-4-5", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(env.anthropic.request_count(), 0);
}

#[tokio::test]
async fn list_models_over_grpc_and_http() {
    let env = start_with(&[("DEEPSEEK_API_KEY", "")]).await;
    let models = env
        .grpc()
        .await
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    let find = |id: &str| {
        models
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    let haiku = find("anthropic/claude-haiku-4-5-20251001");
    assert_eq!(haiku.alias, "claude-haiku-4-5");
    assert!(haiku.available);
    assert_eq!(haiku.context_window, 200_000);
    assert!(
        !find("deepseek/deepseek-chat").available,
        "no DeepSeek key here"
    );
    assert!(find("ollama/llama3.2").available, "local, no key needed");
    assert!(
        models
            .iter()
            .all(|m| m.id != "anthropic/claude-3-7-sonnet-20250219"),
        "deprecated hidden"
    );

    let body: Value = env
        .http
        .get(env.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"openai/gpt-4o-mini"));
    assert!(
        !ids.iter().any(|i| i.starts_with("mock/")),
        "mock off by default"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_and_send_nothing() {
    let env = start().await;
    let post = |body: Value| {
        env.http
            .post(env.url("/v1/chat/completions"))
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"model": "nope/model-x", "messages": [{"role": "user", "content": "x"}]}),
            404,
            "unknown_model",
        ),
        (
            json!({"model": "no-such-alias", "messages": [{"role": "user", "content": "x"}]}),
            404,
            "unknown_model",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": []}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": 7}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "tool", "content": "x"}]}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "fallbacks": ["ghost/x"]}),
            404,
            "unknown_model",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            400,
            "invalid_request",
        ),
        (json!({"messages": "no"}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 5);
    }
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut grpc = env.grpc().await;
    let err = grpc.complete(request("ghost/x", "hi")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let mut bad_tool = request("gpt-4o-mini", "hi");
    bad_tool.tools.push(pb::ToolDefinition {
        name: "x".into(),
        input_schema_json: "{nope".into(),
        ..Default::default()
    });
    assert_eq!(
        grpc.complete(bad_tool).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        env.openai.request_count(),
        0,
        "nothing reached the provider"
    );
}

#[tokio::test]
async fn mock_provider_exists_only_when_enabled_and_says_so() {
    let env = start().await;
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "mock/mock-chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(env);

    let env = start_with(&[("USE_MOCK_PROVIDERS", "true")]).await;
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "mock/mock-chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gathering-mock"], "true");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mock"], true);
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("[mock]")
    );
    let mut grpc = env.grpc().await;
    let resp = grpc
        .complete(request("mock/mock-chat", "hello"))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.mock && resp.content.starts_with("[mock]"));
    let mut stream = grpc
        .stream_complete(request("mock/mock-chat", "hello"))
        .await
        .unwrap()
        .into_inner();
    while let Some(c) = stream.next().await {
        assert!(c.unwrap().mock, "every chunk is labelled");
    }
    let e = grpc
        .embed(pb::EmbedRequest {
            model: "mock/mock-embed".into(),
            inputs: vec!["a".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.mock);
    assert_eq!(e.embeddings[0].values.len(), 1536);
    let total =
        env.openai.request_count() + env.anthropic.request_count() + env.ollama.request_count();
    assert_eq!(total, 0, "mock never calls out");
}

#[tokio::test]
async fn canned_fake_answers_through_the_gateway() {
    let canned = gathering_testkit::fake_llm::FakeProvider::start_canned(
        gathering_testkit::fake_llm::Wire::OpenAi,
    )
    .await;
    let env = start_with(&[("OPENAI_BASE_URL", canned.base_url().as_str())]).await;
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say ok."}]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
    assert_eq!(canned.request_count(), 0, "canned mode records nothing");
}
