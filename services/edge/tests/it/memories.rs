//! The agent memory routes through a real edge: recall by pgvector similarity with embeddings
//! from a real LLM gateway (in-process) over a fake OpenAI provider, the text fallback with no
//! gateway, forgetting and statistics. The knowledge base: `knowledge_base.rs`, uploads:
//! `knowledge_upload.rs`.

use std::collections::HashMap;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_crud::{create_agent, delete, open_edge};
use crate::knowledge_upload::{Part, upload};
use crate::support::{start_auth, start_edge};

/// An LLM gateway (in-process) whose OpenAI provider is a fake.
pub struct Gateway {
    pub url: String,
    pub fake: FakeProvider,
    stop: Shutdown,
}

impl Gateway {
    pub async fn start(db: &TestDb) -> Gateway {
        let fake = FakeProvider::start(Wire::OpenAi).await;
        fake.set_embedding_dimensions(1536);
        let base = fake.base_url();
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", db.url.as_str()),
            ("GATHERING_ENV", "development"),
            ("LLM_GATEWAY_ADDR", "127.0.0.1:0"),
            ("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-test-memories"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = gathering_llm_gateway::Config::from_vars(&vars).unwrap();
        let stop = Shutdown::new();
        let started = gathering_llm_gateway::start(config, stop.clone())
            .await
            .unwrap();
        Gateway {
            url: format!("http://{}", started.grpc_addr),
            fake,
            stop,
        }
    }

    pub fn stop(&self) {
        self.stop.trigger();
    }
}

/// A unit vector of the embedding dimension along `axis`, tilted towards `toward` by `tilt`.
fn vector(axis: usize, toward: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; 1536];
    v[axis] = 1.0;
    v[toward] += tilt;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

async fn embedded_count(db: &TestDb, sql: &str) -> i64 {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn recall_and_search_by_vector_through_the_gateway() {
    let db = TestDb::new().await;
    let gateway = Gateway::start(&db).await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("LLM_GATEWAY_URL", gateway.url.as_str()),
        ],
    )
    .await;
    let api = edge.api();
    let id = create_agent(&api, "Ada").await;

    // Two memories in one batch: one gateway call, one vector each.
    gateway.fake.push(Reply::embeddings(vec![
        vector(0, 1, 0.0),
        vector(5, 6, 0.0),
    ]));
    let r = api
        .post(
            &format!("/memories/agents/{id}/remember/batch"),
            None,
            &json!({"memories": [
                {"content": "The staging database runs PostgreSQL 16", "memory_type": "fact", "tags": ["infra"]},
                {"content": "Ada prefers short answers", "memory_type": "preference", "importance": 0.9}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["total"], 2);
    let first = r.body["created"][0].as_i64().unwrap();
    let sent = gateway.fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/embeddings");
    assert_eq!(sent[0].body["model"], "text-embedding-3-small");
    assert_eq!(sent[0].body["input"][1], "Ada prefers short answers");

    // A query close to the first memory (cosine 0.95): only it passes the 0.7 threshold, and
    // no word of the query occurs in it, so text search would not have found it.
    gateway
        .fake
        .push(Reply::embeddings(vec![vector(0, 1, 0.33)]));
    let r = api
        .post(
            &format!("/memories/agents/{id}/recall"),
            None,
            &json!({"query": "which engine backs pre-production?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["method"], "vector");
    assert_eq!(r.body["total"], 1);
    let hit = &r.body["memories"][0];
    assert_eq!(
        (hit["id"].as_i64(), hit["memory_type"].as_str()),
        (Some(first), Some("fact"))
    );
    let sim = hit["similarity"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&sim), "{sim}");
    assert_eq!(hit["key"], format!("auto_{first}"));

    // The agent route answers strings and says how it recalled.
    gateway
        .fake
        .push(Reply::embeddings(vec![vector(5, 6, 0.2)]));
    let r = api
        .post(
            &format!("/agents/{id}/memories/recall"),
            None,
            &json!({"query": "how should replies look?"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"memories": ["Ada prefers short answers"], "query": "how should replies look?", "method": "vector"})
    );

    let r = api.get(&format!("/memories/agents/{id}/stats"), None).await;
    assert_eq!(
        r.body,
        json!({"total_memories": 2, "active_memories": 2, "embedded_memories": 2, "avg_importance": 0.7})
    );

    // The knowledge base: the entry is embedded from "title\n\ncontent".
    gateway
        .fake
        .push(Reply::embeddings(vec![vector(10, 11, 0.0)]));
    let r = api
        .post(
            "/memories/knowledge",
            None,
            &json!({"title": "Deploys", "content": "Releases go out on Tuesdays.", "category": "docs", "tags": ["ops"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let kb = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"id": kb, "title": "Deploys", "content": "Releases go out on Tuesdays.", "category": "docs", "similarity": null, "tags": ["ops"]})
    );
    let last = gateway.fake.requests().pop().unwrap();
    assert_eq!(
        last.body["input"][0],
        "Deploys\n\nReleases go out on Tuesdays."
    );
    gateway
        .fake
        .push(Reply::embeddings(vec![vector(10, 11, 0.1)]));
    let r = api
        .post(
            "/memories/knowledge/search",
            None,
            &json!({"query": "when do we ship?"}),
        )
        .await;
    assert_eq!(
        (r.body["method"].as_str(), r.body["total"].as_i64()),
        (Some("vector"), Some(1)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["results"][0]["id"], kb);
    assert!(r.body["results"][0]["similarity"].as_f64().unwrap() > 0.99);
    // Far from everything: vector search, nothing over the threshold.
    gateway
        .fake
        .push(Reply::embeddings(vec![vector(20, 21, 0.0)]));
    let r = api
        .post(
            "/memories/knowledge/search",
            None,
            &json!({"query": "Tuesdays"}),
        )
        .await;
    assert_eq!(
        (r.body["method"].as_str(), r.body["total"].as_i64()),
        (Some("vector"), Some(0))
    );

    // An uploaded document's chunks are embedded too (derived 1536-dimension vectors).
    let text: String = (0..300)
        .map(|i| format!("Line {i} of the runbook. "))
        .collect();
    let r = upload(
        &api,
        &[Part::file("runbook.txt", "text/plain", text.as_bytes())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let n = r.body["chunk_count"].as_i64().unwrap();
    assert!(n > 1);
    assert_eq!(
        embedded_count(
            &db,
            "SELECT count(*) FROM memory.knowledge_base WHERE embedding IS NOT NULL"
        )
        .await,
        n + 2
    );

    edge.stop().await;
    auth.stop().await;
    gateway.stop();
}

#[tokio::test]
async fn text_recall_without_a_gateway_and_forgetting() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let id = create_agent(&api, "Ada").await;

    let r = api
        .post(
            &format!("/memories/agents/{id}/remember"),
            None,
            &json!({"content": "The deploy key lives in the vault", "key": "deploy-key", "tags": ["ops"], "importance": 0.8}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let key_id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"id": key_id, "key": "deploy-key", "value": "The deploy key lives in the vault", "memory_type": "fact", "similarity": null, "importance": 0.8})
    );
    let r = api
        .post(
            &format!("/memories/agents/{id}/remember"),
            None,
            &json!({"content": "Deploy on Tuesdays only", "memory_type": "decision"}),
        )
        .await;
    let decision = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["key"], format!("auto_{decision}"));
    let r = api
        .post(
            &format!("/agents/{id}/memories"),
            None,
            &json!({"content": "Unrelated: the office plant needs water"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["memory_type"], "learning");
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));

    let r = api
        .post(
            &format!("/memories/agents/{id}/recall"),
            None,
            &json!({"query": "deploy"}),
        )
        .await;
    assert_eq!(r.body["method"], "text");
    let values: Vec<&str> = r.body["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(!values.iter().any(|v| v.contains("plant")));
    let r = api
        .post(
            &format!("/memories/agents/{id}/recall"),
            None,
            &json!({"query": "deploy", "memory_type": "decision"}),
        )
        .await;
    assert_eq!(r.body["memories"][0]["id"], decision);
    assert_eq!(r.body["total"], 1);
    let r = api
        .post(
            &format!("/memories/agents/{id}/recall"),
            None,
            &json!({"query": "deploy", "tags": ["ops"]}),
        )
        .await;
    assert_eq!(
        (
            r.body["total"].as_i64(),
            r.body["memories"][0]["id"].as_i64()
        ),
        (Some(1), Some(key_id))
    );
    let r = api
        .post(
            &format!("/agents/{id}/memories/recall"),
            None,
            &json!({"query": "plant"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"memories": ["Unrelated: the office plant needs water"], "query": "plant", "method": "text"})
    );

    // Forget is a soft delete: gone from recall, still counted in total.
    let r = delete(&api, &format!("/memories/agents/{id}/memories/{key_id}")).await;
    assert_eq!(r.body, json!({"status": "forgotten", "memory_id": key_id}));
    let r = api
        .post(
            &format!("/memories/agents/{id}/recall"),
            None,
            &json!({"query": "vault"}),
        )
        .await;
    assert_eq!(r.body["total"], 0);
    let r = api.get(&format!("/memories/agents/{id}/stats"), None).await;
    assert_eq!(
        (
            r.body["total_memories"].as_i64(),
            r.body["active_memories"].as_i64(),
            r.body["embedded_memories"].as_i64()
        ),
        (Some(3), Some(2), Some(0))
    );
    assert_eq!(r.body["avg_importance"], 0.5);

    // Another agent's memory is not this agent's to forget.
    let other = create_agent(&api, "Bob").await;
    let r = delete(
        &api,
        &format!("/memories/agents/{other}/memories/{decision}"),
    )
    .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some(format!("Memory {decision} not found").as_str())
        )
    );
    let r = api
        .get(&format!("/memories/agents/{other}/stats"), None)
        .await;
    assert_eq!(
        r.body,
        json!({"total_memories": 0, "active_memories": 0, "embedded_memories": 0, "avg_importance": null})
    );

    // Bad input changes nothing.
    let before = embedded_count(&db, "SELECT count(*) FROM memory.memories").await;
    let r = api
        .post(
            &format!("/memories/agents/{id}/remember/batch"),
            None,
            &json!({"memories": [{"content": "fine"}, {"content": "bad", "importance": 2}, {"content": "x", "memory_type": "gossip"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "memories", "1", "importance"]),
            json!(["body", "memories", "2", "memory_type"])
        ]
    );
    for (path, body) in [
        (
            format!("/memories/agents/{id}/remember"),
            json!({"content": "  "}),
        ),
        (
            format!("/memories/agents/{id}/remember"),
            json!({"content": "x\u{0}y"}),
        ),
        (
            format!("/memories/agents/{id}/recall"),
            json!({"query": "x", "limit": 51}),
        ),
        (
            format!("/memories/agents/{id}/recall"),
            json!({"query": "x", "threshold": 1.5}),
        ),
        (
            format!("/agents/{id}/memories"),
            json!({"content": "x", "memory_type": "rumour"}),
        ),
        (
            format!("/agents/{id}/memories/recall"),
            json!({"query": "x", "limit": 21}),
        ),
    ] {
        let r = api.post(&path, None, &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}");
    }
    let r = api
        .post(
            "/memories/agents/999999/remember",
            None,
            &json!({"content": "x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Agent 999999 not found"))
    );
    let r = api
        .post("/agents/999999/memories", None, &json!({"content": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        embedded_count(&db, "SELECT count(*) FROM memory.memories").await,
        before
    );

    edge.stop().await;
    auth.stop().await;
}
