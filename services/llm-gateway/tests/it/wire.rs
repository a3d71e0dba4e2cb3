//! Each provider's wire format, end to end through gRPC and the OpenAI-compatible HTTP API:
//! plain completions, streaming, tool-call round trips, embeddings, model listing.

use futures_util::StreamExt;
use gathering_proto::v1 as pb;
use gathering_testkit::fake_llm::{FakeToolCall, Reply};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn openai_plain_completion_over_grpc_and_http() {
    let env = start().await;
    env.openai.push(Reply::text("Hello there").usage(12, 3));
    let mut grpc = env.grpc().await;
    let mut req = request("openai/gpt-4o-mini", "hi");
    req.max_tokens = Some(50);
    req.temperature = Some(0.2);
    req.messages.insert(0, msg("system", "be brief"));
    let resp = grpc.complete(req).await.unwrap().into_inner();
    assert_eq!(resp.content, "Hello there");
    assert_eq!(resp.finish_reason, "stop");
    assert_eq!(resp.model, "openai/gpt-4o-mini");
    assert!(!resp.mock);
    let usage = resp.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 3));
    // gpt-4o-mini: 0.15 in, 0.60 out per million tokens.
    let expected = (12.0 * 0.15 + 3.0 * 0.60) / 1e6;
    assert!(
        (usage.cost_usd - expected).abs() < 1e-12,
        "{}",
        usage.cost_usd
    );

    let sent = &env.openai.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["max_completion_tokens"], 50);
    assert_eq!(sent.body["stream"], false);
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        sent.body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );

    // The same through the OpenAI-compatible HTTP API, by alias.
    env.openai.push(Reply::text("Hi again").usage(4, 2));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .header("x-request-id", "req-abc-1")
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": "yo"}]}], "max_tokens": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-abc-1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["id"], "chatcmpl-req-abc-1");
    assert_eq!(body["choices"][0]["message"]["content"], "Hi again");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 6);
    assert_eq!(
        env.openai.requests()[1].body["messages"][0]["content"],
        "yo"
    );
}

#[tokio::test]
async fn deepseek_speaks_openai_with_max_tokens() {
    let env = start().await;
    env.deepseek.push(Reply::text("ds"));
    let mut grpc = env.grpc().await;
    let mut req = request("deepseek-chat", "hi");
    req.max_tokens = Some(9);
    let resp = grpc.complete(req).await.unwrap().into_inner();
    assert_eq!(resp.content, "ds");
    assert_eq!(resp.model, "deepseek/deepseek-chat");
    let sent = &env.deepseek.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {DEEPSEEK_KEY}").as_str())
    );
    assert_eq!(sent.body["max_tokens"], 9);
    assert!(sent.body.get("max_completion_tokens").is_none());
    assert_eq!(env.openai.request_count(), 0);
}

fn weather_tool() -> pb::ToolDefinition {
    pb::ToolDefinition {
        name: "get_weather".into(),
        description: "Weather of a city".into(),
        input_schema_json: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}).to_string(),
    }
}

/// The model calls a tool; the caller runs it and sends the result back; the model answers.
async fn tool_round_trip(
    env: &Env,
    model: &str,
) -> (Vec<gathering_testkit::fake_llm::Recorded>, String) {
    let mut grpc = env.grpc().await;
    let mut req = request(model, "Weather in Paris?");
    req.messages.insert(0, msg("system", "You are terse."));
    req.tools.push(weather_tool());
    let first = grpc.complete(req.clone()).await.unwrap().into_inner();
    assert_eq!(first.finish_reason, "tool_calls", "{first:?}");
    assert_eq!(first.tool_calls.len(), 1);
    let call = first.tool_calls[0].clone();
    assert_eq!(call.name, "get_weather");
    let args: Value = serde_json::from_str(&call.arguments_json).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    req.messages.push(pb::ChatMessage {
        role: "assistant".into(),
        content: first.content.clone(),
        tool_calls: vec![call.clone()],
        ..Default::default()
    });
    req.messages.push(pb::ChatMessage {
        role: "tool".into(),
        content: "sunny, 21C".into(),
        tool_call_id: call.id.clone(),
        name: "get_weather".into(),
        ..Default::default()
    });
    let second = grpc.complete(req).await.unwrap().into_inner();
    assert_eq!(second.finish_reason, "stop");
    (Vec::new(), second.content)
}

#[tokio::test]
async fn anthropic_tool_use_round_trip_uses_blocks() {
    let env = start().await;
    env.anthropic
        .push(Reply::tool_call("get_weather", json!({"city": "Paris"})).with_text("Let me check."));
    env.anthropic.push(Reply::text("Sunny, 21C."));
    let (_, answer) = tool_round_trip(&env, "claude-haiku-4-5").await;
    assert_eq!(answer, "Sunny, 21C.");
    let reqs = env.anthropic.requests();
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(reqs[0].header("anthropic-version"), Some("2023-06-01"));
    assert!(reqs[0].header("authorization").is_none());
    let first = &reqs[0].body;
    assert_eq!(first["model"], "claude-haiku-4-5-20251001");
    assert_eq!(first["system"], "You are terse.");
    assert_eq!(first["max_tokens"], 4096);
    assert_eq!(first["tools"][0]["name"], "get_weather");
    assert_eq!(first["tools"][0]["input_schema"]["required"][0], "city");
    let second = &reqs[1].body;
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{second}");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "text", "text": "Let me check."})
    );
    assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][1]["id"], "toolu_1");
    assert_eq!(msgs[1]["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(msgs[2]["content"][0]["content"], "sunny, 21C");
}

#[tokio::test]
async fn openai_and_ollama_tool_round_trips() {
    let env = start().await;
    env.openai
        .push(Reply::tool_call("get_weather", json!({"city": "Paris"})));
    env.openai.push(Reply::text("Sunny."));
    let (_, answer) = tool_round_trip(&env, "openai/gpt-4o-mini").await;
    assert_eq!(answer, "Sunny.");
    let second = &env.openai.requests()[1].body;
    assert_eq!(second["tools"][0]["type"], "function");
    assert_eq!(second["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        second["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        second["messages"][3],
        json!({"role": "tool", "content": "sunny, 21C", "tool_call_id": "call_1"})
    );

    env.ollama
        .push(Reply::tool_call("get_weather", json!({"city": "Paris"})));
    env.ollama.push(Reply::text("Sunny!"));
    let (_, answer) = tool_round_trip(&env, "ollama/llama3.2").await;
    assert_eq!(answer, "Sunny!");
    let reqs = env.ollama.requests();
    assert_eq!(reqs[0].path, "/api/chat");
    assert_eq!(reqs[0].body["stream"], false);
    assert!(
        reqs[0].header("authorization").is_none(),
        "Ollama needs no key"
    );
    assert_eq!(
        reqs[1].body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Paris"})
    );
    assert_eq!(reqs[1].body["messages"][3]["role"], "tool");
    assert_eq!(reqs[1].body["messages"][3]["tool_name"], "get_weather");
}

async fn collect_stream(env: &Env, model: &str, tools: bool) -> Vec<pb::CompletionChunk> {
    let mut grpc = env.grpc().await;
    let mut req = request(model, "tell me");
    if tools {
        req.tools.push(weather_tool());
    }
    let mut stream = grpc.stream_complete(req).await.unwrap().into_inner();
    let mut chunks = Vec::new();
    while let Some(c) = stream.next().await {
        chunks.push(c.unwrap());
    }
    chunks
}

fn text_of(chunks: &[pb::CompletionChunk]) -> String {
    chunks.iter().map(|c| c.delta.as_str()).collect()
}

#[tokio::test]
async fn streaming_over_grpc_for_each_wire() {
    let env = start().await;
    for (fake, model) in [
        (&env.openai, "openai/gpt-4o-mini"),
        (&env.anthropic, "anthropic/claude-haiku-4-5"),
        (&env.ollama, "ollama/llama3.2"),
    ] {
        fake.push(Reply::text("one two three four").usage(7, 4));
        let chunks = collect_stream(&env, model, false).await;
        assert!(
            chunks.len() >= 5,
            "{model}: deltas arrive separately: {chunks:?}"
        );
        assert_eq!(text_of(&chunks), "one two three four", "{model}");
        let last = chunks.last().unwrap();
        assert!(last.done, "{model}");
        assert_eq!(last.finish_reason, "stop");
        let usage = last.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (7, 4), "{model}");
        assert_eq!(chunks.iter().filter(|c| c.done).count(), 1);
        assert_eq!(fake.requests().last().unwrap().body["stream"], true);

        fake.push(Reply::tool_call("get_weather", json!({"city": "Paris"})).with_text("Checking."));
        let chunks = collect_stream(&env, model, true).await;
        let calls: Vec<_> = chunks.iter().flat_map(|c| c.tool_calls.clone()).collect();
        assert_eq!(calls.len(), 1, "{model}: {chunks:?}");
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].arguments_json).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(text_of(&chunks), "Checking.");
        assert_eq!(
            chunks.last().unwrap().finish_reason,
            "tool_calls",
            "{model}"
        );
    }
    assert_eq!(
        env.openai.requests()[0].body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn http_sse_stream_ends_with_done_and_carries_tool_calls() {
    let env = start().await;
    env.anthropic.push(Reply::text("Hello streaming world"));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(
            &json!({"model": "anthropic/claude-haiku-4-5", "stream": true,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let parsed: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(parsed[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = parsed
        .iter()
        .filter_map(|p| p["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello streaming world");
    let finish = parsed
        .iter()
        .find(|p| p["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = parsed.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 10);

    env.openai.push(Reply::tool_calls(vec![
        FakeToolCall {
            id: "call_a".into(),
            name: "f".into(),
            arguments: json!({"x": 1}),
        },
        FakeToolCall {
            id: "call_b".into(),
            name: "g".into(),
            arguments: json!({}),
        },
    ]));
    let text = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "openai/gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": "go"}],
                      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                                {"type": "function", "function": {"name": "g"}}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let calls: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| v["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 2, "{text}");
    assert_eq!(calls[0]["id"], "call_a");
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["function"]["arguments"], "{\"x\":1}");
    assert_eq!(calls[1]["function"]["name"], "g");
    assert!(text.contains("\"finish_reason\":\"tool_calls\""));
}
