//! The response cache with two gateways on one database: an answer one gateway got from the
//! provider is given by the other without calling it, as JSON or replayed as a stream; the
//! cached answer is marked and costs nothing; what is not deterministic, or opted out, is not
//! cached; keys of different teams do not share answers.

use std::time::{Duration, Instant};

use gathering_proto::v1 as pb;
use gathering_testkit::fake_llm::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn cache_rows(env: &Env) -> i64 {
    let client = env.db.pool(1).get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM agent.gateway_cache", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until the cache holds `n` entries (they are written off the request path).
async fn until_cached(env: &Env, n: i64) {
    let start = Instant::now();
    while cache_rows(env).await < n {
        assert!(start.elapsed() < Duration::from_secs(5), "not cached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post(
    http: &reqwest::Client,
    url: String,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = http.post(url).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// The text of an SSE answer, its finish reason, and whether every chunk says `cached`.
fn reassemble(sse: &str) -> (String, String, bool) {
    let (mut text, mut finish, mut cached) = (String::new(), String::new(), true);
    for line in sse.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        cached &= chunk["cached"] == true;
        if let Some(choice) = chunk["choices"].get(0) {
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = f.to_owned();
            }
        }
    }
    (text, finish, cached)
}

fn chat_body(prompt: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

#[tokio::test]
async fn a_cached_answer_is_served_by_either_gateway_without_the_provider() {
    let vars = [("LLM_SPEND_REFRESH_MS", "100")];
    let env = start_with(&vars).await;
    let peer = env.peer(&vars).await;
    let http = &env.http;
    let answer = "A deterministic answer that is long enough to be replayed in several pieces, \
                  with an accent: é, and a second sentence to pass sixty-four bytes.";
    env.openai.set_default(Reply::text(answer).usage(30, 20));

    // A miss on the first gateway: the provider answers, the cache keeps it.
    let (status, headers, body) = post(
        http,
        env.url("/v1/chat/completions"),
        None,
        chat_body("what is 2 + 2?", json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-gathering-cache"], "miss");
    assert_eq!(env.openai.request_count(), 1);
    until_cached(&env, 1).await;

    // A hit on the other gateway, with keys in another order and -0.0: same request.
    let (status, headers, body) = post(
        http,
        peer.url("/v1/chat/completions"),
        None,
        json!({"messages": [{"content": "what is 2 + 2?", "role": "user"}],
               "temperature": -0.0, "model": "gpt-4o-mini"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-gathering-cache"], "hit");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["cached"], true);
    assert_eq!(v["choices"][0]["message"]["content"], answer);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["cost_usd"], 0.0);
    // A stream replays it as a stream, on either gateway.
    for url in [
        peer.url("/v1/chat/completions"),
        env.url("/v1/chat/completions"),
    ] {
        let (status, headers, sse) = post(
            http,
            url,
            None,
            chat_body("what is 2 + 2?", json!({"stream": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sse}");
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["x-gathering-cache"], "hit");
        let chunks = sse.lines().filter(|l| l.starts_with("data: {")).count();
        assert!(chunks >= 3, "{sse}");
        assert_eq!(
            reassemble(&sse),
            (answer.to_owned(), "stop".to_owned(), true)
        );
        assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");
    }
    assert_eq!(env.openai.request_count(), 1);

    // Opted out, or not deterministic: the provider is called and nothing more is stored.
    let (_, headers, _) = post(
        http,
        peer.url("/v1/chat/completions"),
        None,
        chat_body("what is 2 + 2?", json!({"cache": false})),
    )
    .await;
    assert!(!headers.contains_key("x-gathering-cache"));
    let (_, headers, _) = post(
        http,
        peer.url("/v1/chat/completions"),
        None,
        chat_body("what is 2 + 2?", json!({"temperature": 0.7})),
    )
    .await;
    assert!(!headers.contains_key("x-gathering-cache"));
    assert_eq!(env.openai.request_count(), 3);
    // ...unless asked for explicitly.
    let (_, headers, _) = post(
        http,
        peer.url("/v1/chat/completions"),
        None,
        chat_body("a poem", json!({"temperature": 0.9, "cache": true})),
    )
    .await;
    assert_eq!(headers["x-gathering-cache"], "miss");
    until_cached(&env, 2).await;
    assert_eq!(cache_rows(&env).await, 2);

    // A streamed miss fills the cache too; the JSON request then hits it.
    let (_, headers, sse) = post(
        http,
        env.url("/v1/chat/completions"),
        None,
        chat_body("stream me", json!({"stream": true})),
    )
    .await;
    assert_eq!(headers["x-gathering-cache"], "miss");
    assert_eq!(reassemble(&sse).0, answer);
    until_cached(&env, 3).await;
    let (_, headers, body) = post(
        http,
        peer.url("/v1/chat/completions"),
        None,
        chat_body("stream me", json!({})),
    )
    .await;
    assert_eq!(headers["x-gathering-cache"], "hit", "{body}");
    assert_eq!(env.openai.request_count(), 5);

    // Cached answers are usage rows marked cached, with no tokens and no cost.
    let client = env.db.pool(1).get().await.unwrap();
    let start = Instant::now();
    loop {
        let rows = client
            .query(
                "SELECT input_tokens, output_tokens, cost_usd, stream FROM agent.llm_usage \
                 WHERE cached ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        if rows.len() >= 4 || start.elapsed() > Duration::from_secs(5) {
            assert_eq!(rows.len(), 4);
            for r in &rows {
                assert_eq!(r.get::<_, i32>(0), 0);
                assert_eq!(r.get::<_, i32>(1), 0);
                assert_eq!(r.get::<_, Option<f64>>(2), Some(0.0));
            }
            assert_eq!(rows.iter().filter(|r| r.get::<_, bool>(3)).count(), 2);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uncached: i64 = client
        .query_one(
            "SELECT count(*) FROM agent.llm_usage WHERE NOT cached AND cost_usd > 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(uncached, 5);
}

async fn team_key(
    grpc: &mut pb::llm_gateway_client::LlmGatewayClient<
        gathering_proto::service_auth::AuthedChannel,
    >,
    team: &str,
) -> String {
    grpc.create_gateway_key(pb::CreateGatewayKeyRequest {
        name: format!("key of {team}"),
        team: team.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .secret
}

#[tokio::test]
async fn teams_do_not_share_cached_answers() {
    let operator = "operator-key-for-cache-tests-01";
    let vars = [("LLM_GATEWAY_API_KEYS", operator)];
    let env = start_with(&vars).await;
    let http = &env.http;
    let mut grpc = env.grpc().await;
    let red_one = team_key(&mut grpc, "red").await;
    let red_two = team_key(&mut grpc, "red").await;
    let blue = team_key(&mut grpc, "blue").await;
    let url = env.url("/v1/chat/completions");
    let body = chat_body("shared within a team", json!({}));
    let (_, h, _) = post(http, url.clone(), Some(&red_one), body.clone()).await;
    assert_eq!(h["x-gathering-cache"], "miss");
    until_cached(&env, 1).await;
    let (_, h, _) = post(http, url.clone(), Some(&red_two), body.clone()).await;
    assert_eq!(h["x-gathering-cache"], "hit");
    let (_, h, _) = post(http, url.clone(), Some(&blue), body.clone()).await;
    assert_eq!(h["x-gathering-cache"], "miss");
    let (_, h, _) = post(http, url.clone(), Some(operator), body).await;
    assert_eq!(h["x-gathering-cache"], "miss");
    assert_eq!(env.openai.request_count(), 3);
}
