//! Usage rows: one per call, written asynchronously in batches, with tokens, cost, latency,
//! status, request id and caller.

use gathering_proto::v1 as pb;
use gathering_testkit::fake_llm::Reply;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn every_call_leaves_one_usage_row() {
    let mut env = start_with(&[("LLM_MAX_RETRIES", "0")]).await;
    env.openai.push(Reply::text("a").usage(100, 50));
    let mut grpc = env.grpc().await;
    let mut req = request("gpt-4o-mini", "hi");
    req.caller = Some(pb::Caller {
        service: "executor".into(),
        agent_id: 42,
        request_id: "req-usage-1".into(),
        user_id: "user-7".into(),
    });
    grpc.complete(req).await.unwrap();

    env.anthropic.push(Reply::text("streamed").usage(20, 10));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .header("x-request-id", "req-usage-2")
        .header("x-gathering-agent-id", "43")
        .json(
            &json!({"model": "claude-haiku-4-5", "stream": true, "user": "u2",
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    env.openai.push(Reply::status(500));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .header("x-request-id", "req-usage-3")
        .json(&json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);

    grpc.embed(pb::EmbedRequest {
        model: "text-embedding-3-small".into(),
        inputs: vec!["x".into()],
        caller: Some(pb::Caller {
            request_id: "req-usage-4".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();

    // Stopping flushes whatever is still queued.
    env.stop().await;
    let rows = env.usage_rows(4).await;
    assert_eq!(rows.len(), 4);
    let by_id = |id: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>("request_id") == id)
            .unwrap()
    };

    let r = by_id("req-usage-1");
    assert_eq!(r.get::<_, String>("kind"), "chat");
    assert_eq!(r.get::<_, String>("provider"), "openai");
    assert_eq!(r.get::<_, String>("model"), "gpt-4o-mini");
    assert_eq!(
        r.get::<_, Option<String>>("caller_service").as_deref(),
        Some("executor")
    );
    assert_eq!(r.get::<_, Option<i64>>("agent_id"), Some(42));
    assert_eq!(
        r.get::<_, Option<String>>("user_id").as_deref(),
        Some("user-7")
    );
    assert_eq!(r.get::<_, String>("status"), "ok");
    assert_eq!(
        (
            r.get::<_, i32>("input_tokens"),
            r.get::<_, i32>("output_tokens")
        ),
        (100, 50)
    );
    let cost: f64 = r.get::<_, Option<f64>>("cost_usd").unwrap();
    assert!((cost - (100.0 * 0.15 + 50.0 * 0.60) / 1e6).abs() < 1e-12);
    let total: f64 = r.get("latency_ms");
    let upstream: f64 = r.get::<_, Option<f64>>("upstream_latency_ms").unwrap();
    assert!(total >= upstream && upstream > 0.0, "{total} {upstream}");

    let r = by_id("req-usage-2");
    assert!(r.get::<_, bool>("stream"));
    assert_eq!(r.get::<_, String>("provider"), "anthropic");
    assert_eq!(r.get::<_, Option<i64>>("agent_id"), Some(43));
    assert_eq!(r.get::<_, Option<String>>("user_id").as_deref(), Some("u2"));
    assert_eq!(
        (
            r.get::<_, i32>("input_tokens"),
            r.get::<_, i32>("output_tokens")
        ),
        (20, 10)
    );
    assert!(r.get::<_, Option<f64>>("cost_usd").unwrap() > 0.0);

    let r = by_id("req-usage-3");
    assert_eq!(r.get::<_, String>("status"), "error");
    assert_eq!(
        r.get::<_, Option<String>>("error_kind").as_deref(),
        Some("upstream_error")
    );
    assert_eq!(r.get::<_, i32>("input_tokens"), 0);

    let r = by_id("req-usage-4");
    assert_eq!(r.get::<_, String>("kind"), "embedding");
    assert_eq!(r.get::<_, String>("model"), "text-embedding-3-small");
}
