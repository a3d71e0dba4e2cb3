//! Provider keys: never in logs or error messages (even when the provider echoes them), stored
//! through the edge's `/settings` sealed and masked, and picked up by a running gateway.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn keys_never_appear_in_logs_or_errors() {
    capture_logs();
    let env = start_with(&[("LLM_MAX_RETRIES", "1")]).await;
    let mut grpc = env.grpc().await;
    // Successes, streams, and failures of every kind, each logging what it logs.
    env.openai.push(Reply::text("ok"));
    grpc.complete(request("gpt-4o-mini", "hi")).await.unwrap();
    env.anthropic.push(Reply::text("streamed"));
    let mut s = grpc
        .stream_complete(request("claude-haiku-4-5", "hi"))
        .await
        .unwrap()
        .into_inner();
    while s.next().await.is_some() {}
    // The provider echoes the key it got, as OpenAI does for a wrong key.
    env.openai.push(Reply::raw(
        401,
        format!(r#"{{"error": {{"message": "Incorrect API key provided: {OPENAI_KEY}. Find your key at..."}}}}"#),
    ));
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "fallbacks": ["deepseek-chat"], "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains(OPENAI_KEY), "{body}");
    assert!(
        body.contains("[redacted]") || body.contains("deepseek") || body.contains("ok"),
        "{body}"
    );
    // An unknown key echoed back is masked too (key-shaped).
    env.anthropic.push(Reply::raw(
        403,
        r#"{"type": "error", "error": {"type": "permission_error", "message": "key sk-ant-someone-elses-key-123456 revoked"}}"#,
    ));
    let err = grpc
        .complete(request("claude-haiku-4-5", "x"))
        .await
        .unwrap_err();
    assert!(
        !err.message().contains("someone-elses-key"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains(ANTHROPIC_KEY));
    env.deepseek.push(Reply::status(500));
    env.deepseek.push(Reply::status(500));
    let err = grpc
        .complete(request("deepseek-chat", "x"))
        .await
        .unwrap_err();
    assert!(!err.message().contains(DEEPSEEK_KEY));
    env.openai.push(Reply::malformed());
    env.openai.push(Reply::malformed());
    let _ = grpc.complete(request("gpt-4o-mini", "x")).await;

    let logs = captured_logs();
    assert!(
        logs.len() > 1000,
        "logs were captured ({} bytes)",
        logs.len()
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "captured at the most verbose level"
    );
    for key in [OPENAI_KEY, ANTHROPIC_KEY, DEEPSEEK_KEY, "someone-elses-key"] {
        assert!(!logs.contains(key), "{key} appears in the logs");
    }
    // The keys were really sent, so their absence from the logs means something.
    assert!(
        env.openai
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {OPENAI_KEY}")))
    );
}

pub(crate) struct Edge {
    pub(crate) base: String,
    shutdown: Shutdown,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// An edge in no-auth mode; `gateway` is the gRPC address of the gateway it calls.
pub(crate) async fn start_edge(
    db: &TestDb,
    master_key: &str,
    gateway: Option<std::net::SocketAddr>,
) -> Edge {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("EDGE_ADDR".into(), "127.0.0.1:0".into()),
        ("DISABLE_AUTH".into(), "true".into()),
        ("RATE_LIMIT_ENABLED".into(), "false".into()),
        ("GATHERING_MASTER_KEY".into(), master_key.into()),
    ]);
    if let Some(addr) = gateway {
        vars.insert("LLM_GATEWAY_URL".into(), format!("http://{addr}"));
    }
    let config = gathering_edge::Config::from_vars(&vars).expect("edge config");
    let shutdown = Shutdown::new();
    let started = gathering_edge::start(config, shutdown.clone())
        .await
        .expect("edge starts");
    Edge {
        base: format!("http://{}", started.addr),
        shutdown,
    }
}

#[tokio::test]
async fn key_stored_through_the_edge_is_used_without_restart() {
    let master = "ab".repeat(32);
    let new_key = "sk-stored-through-edge-77c1e0";
    let env = start_with(&[
        ("OPENAI_API_KEY", ""),
        ("GATHERING_MASTER_KEY", master.as_str()),
    ])
    .await;
    env.openai.require_key(new_key);
    let edge = start_edge(&env.db, &master, Some(env.grpc_addr)).await;
    let http = &env.http;

    let r = http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "not_configured");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY")
    );

    let r = http
        .patch(format!("{}/api/settings/providers/openai", edge.base))
        .json(&json!({"api_key": new_key, "default_model": "gpt-4o-mini"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["api_key"], "sk-s...c1e0");
    assert_eq!(v["is_configured"], true);
    assert_eq!(v["key_source"], "stored");
    assert_eq!(v["models"], json!([]));

    // The running gateway picks the key up (NOTIFY; its polling period is 10 minutes here).
    let started = Instant::now();
    loop {
        let r = http
            .post(env.url("/v1/chat/completions"))
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "key not picked up: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = env.openai.requests();
    assert_eq!(
        sent.last().unwrap().header("authorization"),
        Some(format!("Bearer {new_key}").as_str())
    );

    // At rest: sealed, not the key; shown masked everywhere.
    let client = env.db.pool(1).get().await.unwrap();
    let sealed: Vec<u8> = client
        .query_one(
            "SELECT api_key_sealed FROM agent.provider_settings WHERE provider = 'openai'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        !sealed
            .windows(new_key.len())
            .any(|w| w == new_key.as_bytes())
    );
    let all: Value = http
        .get(format!("{}/settings", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = all.to_string();
    assert!(!text.contains(new_key));
    assert_eq!(all["providers"]["openai"]["api_key"], "sk-s...c1e0");
    assert_eq!(all["providers"]["openai"]["default_model"], "gpt-4o-mini");
    assert_eq!(all["providers"]["ollama"]["is_configured"], true);
    assert!(
        all["providers"]["anthropic"]["models"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
    assert_eq!(all["database"]["is_connected"], true);
    assert!(
        all["database"]["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "vector")
    );

    // Removing the stored key takes effect the same way.
    let r = http
        .patch(format!("{}/settings/providers/openai", edge.base))
        .json(&json!({"api_key": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    loop {
        let r = http
            .post(env.url("/v1/chat/completions"))
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn settings_routes_validate_and_test_providers() {
    let master = "cd".repeat(32);
    // The probe's fake is on loopback, an address an admin-set URL may only reach when the
    // operator allows it.
    let env = start_with(&[
        ("GATHERING_MASTER_KEY", master.as_str()),
        ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1"),
    ])
    .await;
    let db = &env.db;
    let edge = start_edge(db, &master, Some(env.grpc_addr)).await;
    let http = gathering_testkit::http::client();
    let patch = |path: &str, body: Value| {
        http.patch(format!("{}{path}", edge.base))
            .json(&body)
            .send()
    };

    let r = patch(
        "/settings/providers/nosuch",
        json!({"api_key": "sk-12345678"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Provider 'nosuch' not found"
    );
    let r = patch("/settings/providers/openai", json!({"api_key": "short"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"][0]["loc"],
        json!(["body", "api_key"])
    );
    let r = patch(
        "/settings/providers/ollama",
        json!({"base_url": "file:///etc/passwd"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let r = patch("/settings/application", json!({"log_level": "LOUD"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = patch(
        "/settings/application",
        json!({"log_level": "debug", "debug": false}),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"environment": "development", "debug": false, "log_level": "DEBUG"})
    );
    let r = patch("/settings/database", json!({"pool_size": 0}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = patch(
        "/settings/database",
        json!({"pool_size": 12, "max_overflow": 3}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["pool_size"].as_u64(), v["max_overflow"].as_u64()),
        (Some(12), Some(3))
    );
    let client = db.pool(1).get().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM agent.provider_settings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "refused changes stored nothing");

    // The connection test probes the provider with the stored key and base URL.
    let fake = FakeProvider::start(Wire::Anthropic).await;
    fake.require_key("sk-ant-probe-key-123");
    fake.set_models(vec!["claude-a".into(), "claude-b".into()]);
    let r = patch(
        "/settings/providers/anthropic",
        json!({"api_key": "sk-ant-probe-key-123", "base_url": fake.base_url()}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = http
        .post(format!("{}/settings/providers/anthropic/test", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["models"], json!(["claude-a", "claude-b"]));
    assert_eq!(fake.requests()[0].path, "/v1/models");
    assert_eq!(
        fake.requests()[0].header("anthropic-version"),
        Some("2023-06-01")
    );
    fake.require_key("another-key-entirely");
    let v: Value = http
        .post(format!("{}/settings/providers/anthropic/test", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["success"], false);
    assert!(!v.to_string().contains("sk-ant-probe-key-123"), "{v}");
    let r = http
        .post(format!("{}/settings/providers/custom/test", edge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn usage_summaries_on_the_edge() {
    let env = start().await;
    let edge = start_edge(&env.db, &"ef".repeat(32), None).await;
    let client = env.db.pool(1).get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('usage-bot') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for (model, agent_header) in [
        ("gpt-4o-mini", true),
        ("gpt-4o-mini", false),
        ("claude-haiku-4-5", true),
    ] {
        let mut req = env.http.post(env.url("/v1/chat/completions"));
        if agent_header {
            req = req.header("x-gathering-agent-id", agent.to_string());
        }
        let r = req
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    env.usage_rows(3).await;
    let get = |q: &str| {
        let url = format!("{}/api/usage/summary?{q}", edge.base);
        let http = env.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let v: Value = get("group_by=model").await.json().await.unwrap();
    let rows = v["rows"].as_array().unwrap();
    let mini = rows
        .iter()
        .find(|r| r["key"] == "openai/gpt-4o-mini")
        .unwrap();
    assert_eq!(mini["requests"], 2);
    assert_eq!(mini["input_tokens"], 20);
    assert_eq!(v["totals"]["requests"], 3);
    assert!(v["totals"]["cost_usd"].as_f64().unwrap() > 0.0);

    let v: Value = get("group_by=agent").await.json().await.unwrap();
    let bot = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"].as_str() == Some(agent.to_string().as_str()))
        .unwrap();
    assert_eq!(bot["requests"], 2);
    assert_eq!(bot["label"], "usage-bot");

    let v: Value = get("group_by=day&days=7").await.json().await.unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["rows"][0]["key"], v["to"]);

    for bad in [
        "group_by=color",
        "from=2024-02-30",
        "days=0",
        "from=2025-02-01&to=2025-01-01",
    ] {
        assert_eq!(get(bad).await.status(), 422, "{bad}");
    }
    let v: Value = get("group_by=model&from=2000-01-01&to=2000-01-31")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"], json!([]));

    let v: Value = env
        .http
        .get(format!("{}/usage?limit=2", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["items"][0]["status"], "ok");
}
