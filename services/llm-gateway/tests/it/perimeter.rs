//! The gateway as an attacker sees it: a raw gRPC client on the internal network, and an
//! admin account used (carelessly, or by whoever took it over) to point a provider somewhere
//! else. A local server stands in for the attacker's host; the operator's key never arrives.

use std::time::{Duration, Instant};

use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_client::LlmGatewayClient;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use serde_json::json;
use tonic::Code;

use crate::support::*;

/// Waits until `f` holds (the registry reloads on a NOTIFY; polling is 10 minutes here).
async fn until<F: FnMut() -> Fut, Fut: std::future::Future<Output = bool>>(mut f: F) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "condition not reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn sql(
    env: &Env,
    statement: &str,
    params: &[&(dyn gathering_db::tokio_postgres::types::ToSql + Sync)],
) {
    env.db
        .pool(1)
        .get()
        .await
        .unwrap()
        .execute(statement, params)
        .await
        .unwrap();
}

fn leaked(attacker: &FakeProvider, key: &str) -> bool {
    attacker.requests().iter().any(|r| {
        r.header("authorization").is_some_and(|h| h.contains(key))
            || r.header("x-api-key").is_some_and(|h| h.contains(key))
    })
}

#[tokio::test]
async fn a_caller_without_a_service_credential_cannot_spend_the_keys() {
    let env = start().await;
    let mut raw = LlmGatewayClient::new(env.raw_channel().await);
    let err = raw
        .complete(request("gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = raw
        .set_provider_settings(pb::SetProviderSettingsRequest {
            provider: "openai".into(),
            base_url: Some("http://attacker.example".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = raw.list_models(pb::ListModelsRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        env.openai.requests().is_empty(),
        "nothing reached the provider"
    );
    // With the credential the same call goes through.
    env.openai.push(Reply::text("ok"));
    env.grpc()
        .await
        .complete(request("gpt-4o-mini", "hi"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_environment_key_never_follows_a_catalogue_url_change() {
    let attacker = FakeProvider::start(Wire::OpenAi).await;
    // The operator's key with no OPENAI_BASE_URL: bound to OpenAI's public host. The allow-list
    // lets the guard pass the attacker's loopback address, so only the binding stands in the way.
    let env = start_with(&[
        ("OPENAI_BASE_URL", ""),
        ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1"),
    ])
    .await;
    sql(
        &env,
        "INSERT INTO agent.providers (name, api_base_url, api_type) VALUES ('openai', $1, 'openai') \
         ON CONFLICT (name) DO UPDATE SET api_base_url = EXCLUDED.api_base_url",
        &[&attacker.base_url()],
    )
    .await;
    let mut grpc = env.grpc().await;
    // The catalogue change reaches the gateway through the trigger's NOTIFY, well within a second.
    let took = until(|| {
        let g = env.gateway().clone();
        let url = attacker.base_url();
        async move {
            g.registry().snapshot().providers["openai"]
                .endpoint
                .base_url
                == url
        }
    })
    .await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    attacker.push(Reply::text("stolen"));
    let err = grpc
        .complete(request("openai/gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(!leaked(&attacker, OPENAI_KEY));
    assert!(
        attacker.requests().is_empty(),
        "no call without a key for that host"
    );
    let settings = grpc
        .get_provider_settings(pb::GetProviderSettingsRequest {
            providers: vec!["openai".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        settings.providers[0].note.contains("OPENAI_API_KEY"),
        "{:?}",
        settings.providers[0]
    );
    assert_eq!(settings.providers[0].masked_key, "");
}

#[tokio::test]
async fn a_stored_key_stays_with_the_url_it_was_stored_for() {
    let attacker = FakeProvider::start(Wire::OpenAi).await;
    let stored_key = "sk-stored-for-the-real-host-9d2";
    let env = start_with(&[
        ("OPENAI_API_KEY", ""),
        ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1"),
    ])
    .await;
    env.openai.require_key(stored_key);
    let mut grpc = env.grpc().await;
    // Stored while the effective URL is the operator's OPENAI_BASE_URL (the real provider).
    let view = grpc
        .set_provider_settings(pb::SetProviderSettingsRequest {
            provider: "openai".into(),
            api_key: Some(stored_key.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.key_source, "stored");
    assert_eq!(view.base_url, env.openai.base_url());
    let bound: String = env
        .db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT key_base_url FROM agent.provider_settings WHERE provider = 'openai'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bound, env.openai.base_url());
    env.openai.push(Reply::text("ok"));
    grpc.complete(request("gpt-4o-mini", "hi")).await.unwrap();

    // The URL is pointed elsewhere: the key does not go along.
    let view = grpc
        .set_provider_settings(pb::SetProviderSettingsRequest {
            provider: "openai".into(),
            base_url: Some(attacker.base_url()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.masked_key, "");
    assert!(view.note.contains("enter it again"), "{view:?}");
    attacker.push(Reply::text("stolen"));
    let err = grpc
        .complete(request("gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(!leaked(&attacker, stored_key));
    let probe = grpc
        .probe_provider(pb::ProbeProviderRequest {
            provider: "openai".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!probe.success);
    assert!(attacker.requests().is_empty(), "{:?}", attacker.requests());

    // An admin who enters a key for the new host binds that key there.
    grpc.set_provider_settings(pb::SetProviderSettingsRequest {
        provider: "openai".into(),
        api_key: Some("sk-entered-for-the-new-host".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    attacker.push(Reply::text("fine"));
    grpc.complete(request("gpt-4o-mini", "hi")).await.unwrap();
    assert!(leaked(&attacker, "sk-entered-for-the-new-host"));
    assert!(!leaked(&attacker, stored_key));
}

#[tokio::test]
async fn admin_set_urls_of_remote_providers_go_through_the_outbound_guard() {
    let env = start().await;
    let target = FakeProvider::start(Wire::OpenAi).await;
    sql(
        &env,
        "INSERT INTO agent.providers (name, api_base_url, api_type) VALUES \
         ('metadata', 'http://169.254.169.254/v1', 'openai'), ('internal', $1, 'openai')",
        &[&target.base_url()],
    )
    .await;
    sql(
        &env,
        "INSERT INTO agent.models (provider_id, model_name) \
         SELECT id, 'm' FROM agent.providers WHERE name IN ('metadata', 'internal')",
        &[],
    )
    .await;
    let mut grpc = env.grpc().await;
    // Keys for both, stored by an admin.
    for p in ["metadata", "internal"] {
        grpc.set_provider_settings(pb::SetProviderSettingsRequest {
            provider: p.into(),
            api_key: Some("sk-a-key-for-a-private-host".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let err = grpc
        .complete(request("metadata/m", "hi"))
        .await
        .unwrap_err();
    assert!(err.message().contains("outbound guard"), "{err:?}");
    // A name-less loopback URL: refused before any request.
    let err = grpc
        .complete(request("internal/m", "hi"))
        .await
        .unwrap_err();
    assert!(err.message().contains("outbound guard"), "{err:?}");
    assert!(target.requests().is_empty());
    // The same through the OpenAI-compatible API.
    let r = env
        .http
        .post(env.url("/v1/chat/completions"))
        .json(&json!({"model": "internal/m", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(target.requests().is_empty());
}

#[test]
fn the_http_api_is_closed_by_default_outside_development() {
    let base = |env: &str, extra: &[(&str, &str)]| {
        let mut v: std::collections::HashMap<String, String> = std::collections::HashMap::from([
            ("DATABASE_URL".into(), "postgres://u@h/d".into()),
            ("GATHERING_ENV".into(), env.into()),
            ("GATHERING_MASTER_KEY".into(), "11".repeat(32)),
        ]);
        for (k, val) in extra {
            v.insert((*k).into(), (*val).into());
        }
        gathering_llm_gateway::Config::from_vars(&v)
    };
    let dev = base("development", &[]).unwrap();
    assert!(dev.http_addr.ip().is_loopback(), "{}", dev.http_addr);
    let err = base("production", &[]).unwrap_err();
    assert_eq!(err.var, "LLM_GATEWAY_API_KEYS");
    assert!(base("staging", &[]).is_err());
    assert!(base("production", &[("LLM_GATEWAY_API_KEYS", "k1")]).is_ok());
    assert!(base("production", &[("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:8001")]).is_ok());
    assert!(base("production", &[("LLM_GATEWAY_HTTP_ADDR", "10.0.0.5:8001")]).is_err());
}
