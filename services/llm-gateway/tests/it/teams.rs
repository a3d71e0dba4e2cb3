//! Virtual keys, budgets and per-key limits with two gateways on one database (as two instances
//! behind a load balancer) and fake providers that count the calls they get: keys made by an
//! admin through the edge work on both gateways and stop working on both when revoked or
//! rotated; a spent budget answers 429 without calling the provider; a key's per-minute limits
//! hold across both gateways.

use std::time::{Duration, Instant};

use gathering_proto::v1 as pb;
use gathering_testkit::fake_llm::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::keys::start_edge;
use crate::support::*;

const OPERATOR: &str = "operator-key-for-tests-5e1f0a9c";
const MASTER: &str = "cd0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

/// Operator keys configured (so the HTTP API needs a key), a fast spend refresh and rate flush.
const VARS: &[(&str, &str)] = &[
    ("LLM_GATEWAY_API_KEYS", OPERATOR),
    ("LLM_SPEND_REFRESH_MS", "100"),
    ("LLM_RATE_FLUSH_MS", "50"),
    ("LLM_CACHE", "false"),
];

/// As [`VARS`], with the master key the edge shares (its service credential derives from it).
const EDGE_VARS: &[(&str, &str)] = &[
    ("LLM_GATEWAY_API_KEYS", OPERATOR),
    ("GATHERING_MASTER_KEY", MASTER),
    ("LLM_SPEND_REFRESH_MS", "100"),
    ("LLM_RATE_FLUSH_MS", "50"),
    ("LLM_CACHE", "false"),
];

/// Waits until `f` holds (the key snapshot reloads on a NOTIFY; polling is 10 minutes here).
async fn until<F: FnMut() -> Fut, Fut: std::future::Future<Output = bool>>(mut f: F) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "condition not reached"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

async fn chat(
    http: &reqwest::Client,
    url: String,
    key: &str,
    model: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = http
        .post(url)
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn scalar_f64(env: &Env, sql: &str) -> f64 {
    let client = env.db.pool(1).get().await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

fn new_key(name: &str, team: &str) -> pb::CreateGatewayKeyRequest {
    pb::CreateGatewayKeyRequest {
        name: name.into(),
        team: team.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn keys_made_by_an_admin_work_on_both_gateways_and_revocation_reaches_both() {
    let env = start_with(EDGE_VARS).await;
    let peer = env.peer(EDGE_VARS).await;
    let edge = start_edge(&env.db, MASTER, Some(env.grpc_addr)).await;
    let http = &env.http;
    let urls = [
        env.url("/v1/chat/completions"),
        peer.url("/v1/chat/completions"),
    ];

    // Created through the edge (no-auth mode: the development user is an admin).
    let r = http
        .post(format!("{}/settings/gateway-keys", edge.base))
        .json(
            &json!({"name": "ci bot", "owner": "ci@example.com", "team": "alpha",
                      "models": ["openai/*"], "limits": {"rpm": 1000}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cache_control = r.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache_control.contains("no-store"), "{cache_control}");
    let created: Value = r.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert!(
        secret.starts_with("sk-gth-") && secret.len() == 50,
        "{secret}"
    );
    assert_eq!(created["status"], "active");
    assert_eq!(created["team"], "alpha");
    assert_eq!(created["models"], json!(["openai/*"]));

    // Never shown again, never stored: the list has a hint, the table a SHA-256.
    let list: Value = http
        .get(format!("{}/settings/gateway-keys", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    let listed = list["keys"][0].to_string();
    assert!(!listed.contains(&secret[7..]), "{listed}");
    assert!(list["keys"][0].get("key").is_none());
    let client = env.db.pool(1).get().await.unwrap();
    let row = client
        .query_one(
            "SELECT key_hash, key_hint, row_to_json(k)::text FROM agent.gateway_keys k",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    assert_eq!(stored, digest.as_ref());
    assert!(!row.get::<_, String>(2).contains(&secret[7..]));
    drop(client);

    // The key works on both gateways, within its models, with OpenAI's rate-limit headers.
    for url in &urls {
        let (status, headers, body) = chat(http, url.clone(), &secret, "gpt-4o-mini").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-ratelimit-limit-requests"], "1000");
        assert!(headers.contains_key("x-ratelimit-remaining-requests"));
        assert!(headers.contains_key("x-ratelimit-reset-requests"));
    }
    assert_eq!(env.openai.request_count(), 2);
    let (status, _, body) = chat(http, urls[1].clone(), &secret, "claude-haiku-4-5").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert_eq!(env.anthropic.request_count(), 0);
    // /v1/models shows the key only what it may use.
    let models: Value = http
        .get(peer.url("/v1/models"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|m| m.starts_with("openai/")),
        "{ids:?}"
    );

    // Operator keys still work, unrestricted; no key or an unknown one does not.
    let (status, headers, _) = chat(http, urls[0].clone(), OPERATOR, "claude-haiku-4-5").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("x-ratelimit-limit-requests"));
    let forged = format!("sk-gth-{}", "A".repeat(43));
    for key in ["", forged.as_str()] {
        let (status, _, body) = chat(http, urls[1].clone(), key, "gpt-4o-mini").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }

    // Rotation: the old secret stops on both gateways, the new one works on both.
    let r = http
        .post(format!("{}/settings/gateway-keys/{id}/rotate", edge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    for url in &urls {
        until(|| async {
            chat(http, url.clone(), &secret, "gpt-4o-mini").await.0 == StatusCode::UNAUTHORIZED
        })
        .await;
        let (status, _, body) = chat(http, url.clone(), &rotated, "gpt-4o-mini").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Revocation reaches both gateways through NOTIFY (their polling backstop is 10 minutes).
    let r = http
        .delete(format!("{}/settings/gateway-keys/{id}", edge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "revoked");
    for url in &urls {
        let waited = until(|| async {
            chat(http, url.clone(), &rotated, "gpt-4o-mini").await.0 == StatusCode::UNAUTHORIZED
        })
        .await;
        eprintln!("revocation seen after {waited:?}");
    }
    // ...and stays seen: no call with the revoked key reaches the provider any more.
    let calls = env.openai.request_count();
    for url in &urls {
        let (status, _, _) = chat(http, url.clone(), &rotated, "gpt-4o-mini").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(env.openai.request_count(), calls);
    let list: Value = http
        .get(format!(
            "{}/settings/gateway-keys?include_revoked=true",
            edge.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["keys"][0]["status"], "revoked");
    let r = http
        .post(format!("{}/settings/gateway-keys/{id}/rotate", edge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Bad input is a 422 listing the fields.
    let r = http
        .post(format!("{}/settings/gateway-keys", edge.base))
        .json(
            &json!({"name": "", "team": "no spaces", "budget": {"amount": -1, "period": "weekly"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    for field in ["name", "team", "amount", "period"] {
        assert!(text.contains(field), "{field}: {text}");
    }

    // Usage by key and team through the edge's /usage: the calls above (2 + 2, and any the
    // old secret made on a gateway before its NOTIFY arrived), all written by now.
    until_usage(&env, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let usage = until_usage(&env, 4).await;
    let summary: Value = http
        .get(format!("{}/usage/summary?group_by=key", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_text = id.to_string();
    let row = summary["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"].as_str() == Some(id_text.as_str()))
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(row["label"], "ci bot");
    assert_eq!(row["requests"], usage);
    let summary: Value = http
        .get(format!("{}/usage/summary?group_by=team", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        summary["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "alpha" && r["requests"] == usage),
        "{summary}"
    );
    let recent: Value = http
        .get(format!("{}/usage?key_id={id}", edge.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = recent["items"].as_array().unwrap();
    assert_eq!(items.len() as i64, usage, "{recent}");
    assert!(
        items
            .iter()
            .all(|i| i["team"] == "alpha" && i["cached"] == false)
    );
}

/// Waits until key-made usage rows reach `n`; returns how many there are.
async fn until_usage(env: &Env, n: i64) -> i64 {
    let client = env.db.pool(1).get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM agent.llm_usage WHERE key_id IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if count >= n || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_spent_budget_answers_429_on_both_gateways_without_a_provider_call() {
    let env = start_with(VARS).await;
    let peer = env.peer(VARS).await;
    let http = &env.http;
    let mut grpc = env.grpc().await;
    let key = grpc
        .create_gateway_key(pb::CreateGatewayKeyRequest {
            budget: Some(pb::Budget {
                amount_usd: 0.01,
                period: "daily".into(),
            }),
            ..new_key("budgeted", "")
        })
        .await
        .unwrap()
        .into_inner();
    let secret = key.secret;
    // gpt-4o costs $2.50 per million input tokens: 100k tokens = $0.25, over the budget.
    env.openai
        .set_default(Reply::text("pricey").usage(100_000, 0));
    let (status, _, body) = chat(http, env.url("/v1/chat/completions"), &secret, "gpt-4o").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.openai.request_count(), 1);

    // The gateway that served it refuses at once.
    let (status, headers, body) =
        chat(http, env.url("/v1/chat/completions"), &secret, "gpt-4o").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("budgeted") && message.contains("daily budget of $0.01"),
        "{message}"
    );
    assert_eq!(headers["x-should-retry"], "false");

    // The other gateway learns it from the spend rows (written with the usage rows, once).
    until(|| async {
        scalar_f64(
            &env,
            "SELECT COALESCE(sum(cost_usd), 0) FROM agent.gateway_spend WHERE scope = 'key' AND period = 'day'",
        )
        .await
            > 0.2
    })
    .await;
    // Its next refresh (every 100 ms here) is made now, so no provider call can slip in.
    peer.started
        .gateway
        .access()
        .spend
        .refresh(&env.db.pool(1))
        .await
        .unwrap();
    let (status, _, body) = chat(http, peer.url("/v1/chat/completions"), &secret, "gpt-4o").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(env.openai.request_count(), 1);
    // Spent exactly once, whichever gateway wrote it; the month counts it too.
    let day = scalar_f64(
        &env,
        "SELECT sum(cost_usd) FROM agent.gateway_spend WHERE scope = 'key' AND period = 'day'",
    )
    .await;
    let month = scalar_f64(
        &env,
        "SELECT sum(cost_usd) FROM agent.gateway_spend WHERE scope = 'key' AND period = 'month'",
    )
    .await;
    assert!(
        (day - 0.25).abs() < 1e-9 && (month - 0.25).abs() < 1e-9,
        "{day} {month}"
    );

    // A team budget binds every key of the team.
    let team = grpc
        .set_gateway_team(pb::SetGatewayTeamRequest {
            team: "beta".into(),
            budget: Some(pb::Budget {
                amount_usd: 0.1,
                period: "monthly".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team.team, "beta");
    let first = grpc
        .create_gateway_key(new_key("beta one", "beta"))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let second = grpc
        .create_gateway_key(new_key("beta two", "beta"))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let (status, _, _) = chat(http, env.url("/v1/chat/completions"), &first, "gpt-4o").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = chat(http, env.url("/v1/chat/completions"), &second, "gpt-4o").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("team 'beta'"),
        "{body}"
    );
    assert_eq!(env.openai.request_count(), 2);
    // Trusted callers (operator keys, services over gRPC) are not bound by any key's budget.
    let (status, _, _) = chat(http, env.url("/v1/chat/completions"), OPERATOR, "gpt-4o").await;
    assert_eq!(status, StatusCode::OK);
    grpc.complete(request("gpt-4o", "hi")).await.unwrap();
    assert_eq!(env.openai.request_count(), 4);
    let teams = grpc
        .list_gateway_teams(pb::ListGatewayTeamsRequest {})
        .await
        .unwrap()
        .into_inner();
    let beta = teams.teams.iter().find(|t| t.team == "beta").unwrap();
    assert_eq!(beta.keys, 2);
}

/// Sleeps into the next minute when less than `margin` is left of this one (limits count per
/// UTC minute; a test must not straddle two windows).
async fn away_from_minute_end(margin: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis(u64::try_from(now.as_millis() % 60_000).unwrap());
    if Duration::from_secs(60) - into < margin {
        tokio::time::sleep(Duration::from_secs(60) - into + Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn per_key_limits_hold_across_both_gateways() {
    let env = start_with(VARS).await;
    let peer = env.peer(VARS).await;
    let http = &env.http;
    let mut grpc = env.grpc().await;
    let rpm_key = grpc
        .create_gateway_key(pb::CreateGatewayKeyRequest {
            limits: Some(pb::KeyLimits { rpm: 4, tpm: 0 }),
            ..new_key("four a minute", "")
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let tpm_key = grpc
        .create_gateway_key(pb::CreateGatewayKeyRequest {
            limits: Some(pb::KeyLimits { rpm: 0, tpm: 100 }),
            ..new_key("hundred tokens a minute", "")
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    away_from_minute_end(Duration::from_secs(20)).await;

    // Requests per minute: ten calls alternating between the gateways, four admitted.
    let urls = [
        env.url("/v1/chat/completions"),
        peer.url("/v1/chat/completions"),
    ];
    let (mut ok, mut limited) = (0, 0);
    for i in 0..10 {
        let (status, headers, body) =
            chat(http, urls[i % 2].clone(), &rpm_key, "gpt-4o-mini").await;
        assert_eq!(headers["x-ratelimit-limit-requests"], "4", "{body}");
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert_eq!(body["error"]["code"], "rate_limit_exceeded");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("4 requests per minute")
                );
                assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
                assert!(headers.contains_key("retry-after"));
                assert!(headers.contains_key("x-ratelimit-reset-requests"));
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((ok, limited), (4, 6));
    assert_eq!(env.openai.request_count(), 4);

    // Tokens per minute: a call of 120 tokens on one gateway spends the key's 100 on both.
    env.openai.set_default(Reply::text("long").usage(80, 40));
    let (status, _, body) = chat(http, urls[0].clone(), &tpm_key, "gpt-4o-mini").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = chat(http, urls[0].clone(), &tpm_key, "gpt-4o-mini").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["x-ratelimit-limit-tokens"], "100");
    assert_eq!(headers["x-ratelimit-remaining-tokens"], "0");
    // Once the first gateway's batched flush (every 50 ms here) wrote the tokens, the other
    // refuses too, before calling anyone.
    until(|| async {
        scalar_f64(
            &env,
            "SELECT COALESCE(sum(tokens), 0)::float8 FROM agent.gateway_rate",
        )
        .await
            >= 120.0
    })
    .await;
    let (status, _, body) = chat(http, urls[1].clone(), &tpm_key, "gpt-4o-mini").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100 tokens per minute")
    );
    assert_eq!(env.openai.request_count(), 5);
}
