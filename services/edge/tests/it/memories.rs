//! `/memories` and the agent memory routes through a real edge: recall by pgvector similarity
//! with embeddings from a real LLM gateway (in-process) over a fake OpenAI provider, the text
//! fallback with no gateway, forgetting, statistics, the knowledge base (create, search, list,
//! stats) and document upload with A6 chunking.

use std::collections::HashMap;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_crud::{create_agent, delete, open_edge};
use crate::support::{Api, Auth, Edge, start_auth, start_edge};

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

#[tokio::test]
async fn knowledge_base_by_text_with_scopes_paging_and_stats() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let client = db.pool(1).get().await.unwrap();
    let project: i64 = client
        .query_one(
            "INSERT INTO project.projects (name, local_path) VALUES ('p', '/tmp/p') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let add = |body: Value| {
        let api = api.clone();
        async move {
            let r = api.post("/memories/knowledge", None, &body).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["id"].as_i64().unwrap()
        }
    };
    let in_project = add(json!({"title": "Caching", "content": "Use Redis for sessions.", "category": "best_practice", "project_id": project})).await;
    let global = add(json!({"title": "Style", "content": "Prefer small sessions of work.", "is_global": true, "category": "docs"})).await;
    let plain = add(
        json!({"title": "Misc", "content": "Sessions expire after one hour.", "tags": ["auth"]}),
    )
    .await;

    let search = |body: Value| {
        let api = api.clone();
        async move {
            let r = api.post("/memories/knowledge/search", None, &body).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.body["method"], "text");
            let mut ids: Vec<i64> = r.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_i64().unwrap())
                .collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(
        search(json!({"query": "sessions"})).await,
        vec![in_project, global, plain]
    );
    assert_eq!(
        search(json!({"query": "sessions", "project_id": project})).await,
        vec![in_project, global]
    );
    assert_eq!(
        search(json!({"query": "sessions", "project_id": project, "include_global": false})).await,
        vec![in_project]
    );
    assert_eq!(
        search(json!({"query": "sessions", "include_global": false})).await,
        vec![in_project, plain]
    );
    assert_eq!(
        search(json!({"query": "sessions", "category": "docs"})).await,
        vec![global]
    );
    assert_eq!(search(json!({"query": "redis"})).await, vec![in_project]);
    // LIKE wildcards and quotes in the query are text, not pattern or SQL.
    assert_eq!(search(json!({"query": "%"})).await, Vec::<i64>::new());
    assert_eq!(
        search(json!({"query": "' OR 1=1 --"})).await,
        Vec::<i64>::new()
    );
    assert_eq!(search(json!({"query": "_"})).await, Vec::<i64>::new());

    for (body, field) in [
        (
            json!({"title": "x", "content": "y", "category": "gossip"}),
            "category",
        ),
        (json!({"title": "", "content": "y"}), "title"),
        (
            json!({"title": "x", "content": "y", "project_id": 999999}),
            "project_id",
        ),
    ] {
        let r = api.post("/memories/knowledge", None, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", field]));
    }
    let r = api
        .post(
            "/memories/knowledge?author_agent_id=999999",
            None,
            &json!({"title": "x", "content": "y"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let agent = create_agent(&api, "Ada").await;
    let r = api
        .post(
            &format!("/memories/knowledge?author_agent_id={agent}"),
            None,
            &json!({"title": "By Ada", "content": "z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let by_ada = r.body["id"].as_i64().unwrap();

    let r = api
        .get("/memories/knowledge?page=1&page_size=2", None)
        .await;
    assert_eq!(
        (
            r.body["total"].as_i64(),
            r.body["page"].as_i64(),
            r.body["page_size"].as_i64()
        ),
        (Some(4), Some(1), Some(2))
    );
    let page1: Vec<i64> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page1, vec![by_ada, plain], "newest first");
    let r = api
        .get("/memories/knowledge?page=3&page_size=2", None)
        .await;
    assert_eq!(
        (r.body["total"].as_i64(), r.body["entries"].clone()),
        (Some(4), json!([]))
    );
    let r = api.get("/memories/knowledge?category=docs", None).await;
    assert_eq!(r.body["total"], 1);
    for q in ["page=0", "page_size=101", "page=abc"] {
        assert_eq!(
            api.get(&format!("/memories/knowledge?{q}"), None)
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}"
        );
    }

    let r = api.get("/memories/knowledge/stats", None).await;
    assert_eq!(r.body["total_entries"], 4);
    assert_eq!(
        r.body["by_category"],
        json!({"best_practice": 1, "docs": 1, "uncategorized": 2})
    );
    let recent = r.body["recent_entries"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["id"], by_ada);
    assert_eq!(recent[1]["tags"], json!(["auth"]));

    edge.stop().await;
    auth.stop().await;
}

/// One part of a multipart form.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

impl<'a> Part<'a> {
    fn file(filename: &'a str, content_type: &'a str, body: &'a [u8]) -> Self {
        Part {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            body,
        }
    }

    fn field(name: &'a str, value: &'a str) -> Self {
        Part {
            name,
            filename: None,
            content_type: None,
            body: value.as_bytes(),
        }
    }
}

/// `multipart/form-data`, written by hand so tests can also send what a browser would not.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----gathering-test-7d1f0c";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = p.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(p.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(api: &Api, parts: &[Part<'_>]) -> crate::support::Reply {
    let (content_type, body) = multipart(parts);
    api.send(
        api.client
            .post(format!("{}/memories/knowledge/upload", api.base))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

struct Entry {
    title: String,
    content: String,
    tags: Vec<String>,
    source_url: Option<String>,
    parent_id: Option<i64>,
    is_global: bool,
    category: Option<String>,
}

async fn entries(db: &TestDb) -> Vec<(i64, Entry)> {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query(
            "SELECT id, title, content, tags, source_url, parent_id, is_global, category \
             FROM memory.knowledge_base ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                Entry {
                    title: r.get(1),
                    content: r.get(2),
                    tags: r.get(3),
                    source_url: r.get(4),
                    parent_id: r.get(5),
                    is_global: r.get(6),
                    category: r.get(7),
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn upload_pdf_is_chunked_and_searchable() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    // Two pages of text, over the 3000 characters that make a document chunked.
    let text: String = (1..=100)
        .map(|i| format!("Line {i} of the quarterly report on the zanzibar harbour project.\n"))
        .collect();
    let pdf = gathering_tools::pdf::create(Some("Quarterly report"), &text).unwrap();
    let r = upload(
        &api,
        &[
            Part::file("report.pdf", "application/pdf", &pdf),
            Part::field("title", "Quarterly report"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["format"], "pdf");
    let chunks = r.body["chunk_count"].as_i64().unwrap();
    assert!(chunks >= 2, "{:?}", r.body);
    let rows = entries(&db).await;
    assert_eq!(rows.len() as i64, chunks + 1);
    assert!(
        rows[0]
            .1
            .content
            .starts_with(&format!("[Document with {chunks} chunks]"))
    );
    assert!(
        rows[1].1.content.contains("Line 1 of the quarterly report"),
        "{}",
        rows[1].1.content
    );
    assert!(
        rows.last()
            .unwrap()
            .1
            .content
            .contains("Line 100 of the quarterly report")
    );

    let r = api
        .post(
            "/memories/knowledge/search",
            None,
            &json!({"query": "zanzibar harbour"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let found = r.body["results"].as_array().unwrap();
    assert!(!found.is_empty(), "{:?}", r.body);
    assert!(
        found
            .iter()
            .all(|k| k["title"].as_str().unwrap().starts_with("Quarterly report")),
        "{:?}",
        r.body
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn upload_chunks_long_documents_as_a6_says() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    // 5000 characters with blank lines at 1500 and 3302. The first chunk ends after the blank
    // line at 1500 (beyond half a chunk); the second, from 1302, finds no blank line or sentence
    // end beyond its half and ends at 3302 (2000 characters); the third, from 3102, runs to the
    // end.
    let doc = format!(
        "{}\n\n{}\n\n{}",
        "a".repeat(1500),
        "b".repeat(1800),
        "c".repeat(1696)
    );
    assert_eq!(doc.chars().count(), 5000);
    let r = upload(
        &api,
        &[
            Part::file("../../notes/guide.md", "text/markdown", doc.as_bytes()),
            Part::field("tags", "ops, runbook,,"),
            Part::field("category", "docs"),
            Part::field("is_global", "true"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let main = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"id": main, "title": "guide.md", "filename": "guide.md", "format": "markdown",
               "char_count": 5000, "chunk_count": 3, "category": "docs", "tags": ["ops", "runbook"]})
    );
    let rows = entries(&db).await;
    assert_eq!(rows.len(), 4);
    let (id, m) = &rows[0];
    assert_eq!(*id, main);
    let preview: String = doc.chars().take(500).collect();
    assert_eq!(
        m.content,
        format!("[Document with 3 chunks]\n\n{preview}...")
    );
    assert_eq!(
        (m.source_url.as_deref(), m.tags.clone(), m.parent_id),
        (
            Some("file://guide.md"),
            vec!["ops".to_owned(), "runbook".to_owned()],
            None
        )
    );
    let chars: Vec<char> = doc.chars().collect();
    let spans = [(0, 1502), (1302, 3302), (3102, 5000)];
    for (i, (_, c)) in rows[1..].iter().enumerate() {
        let (s, e) = spans[i];
        let expected: String = chars[s..e].iter().collect();
        assert_eq!(c.content, expected.trim(), "chunk {i}");
        assert!(c.content.chars().count() <= 2000);
        assert_eq!(c.title, format!("guide.md (chunk {}/3)", i + 1));
        assert_eq!(
            c.tags,
            vec![
                "ops".to_owned(),
                "runbook".to_owned(),
                format!("doc:{main}"),
                "chunk".to_owned()
            ]
        );
        assert_eq!(
            c.source_url.as_deref(),
            Some(format!("file://guide.md#chunk-{i}").as_str())
        );
        assert_eq!(
            (c.parent_id, c.is_global, c.category.as_deref()),
            (Some(main), true, Some("docs"))
        );
    }

    // Up to 3000 characters, or with chunking off: one entry holding the whole text.
    let short = "b".repeat(3000);
    let r = upload(
        &api,
        &[
            Part::file("short.txt", "text/plain", short.as_bytes()),
            Part::field("title", "Short one"),
        ],
    )
    .await;
    assert_eq!(
        (
            r.body["chunk_count"].as_i64(),
            r.body["format"].as_str(),
            r.body["tags"].clone()
        ),
        (Some(1), Some("txt"), Value::Null)
    );
    let r = upload(
        &api,
        &[
            Part::file("long.txt", "text/plain", doc.as_bytes()),
            Part::field("chunk_large_docs", "false"),
        ],
    )
    .await;
    assert_eq!(r.body["chunk_count"], 1);
    let rows = entries(&db).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(
        (
            rows[4].1.title.as_str(),
            rows[4].1.content.as_str(),
            rows[4].1.source_url.as_deref()
        ),
        ("Short one", short.as_str(), Some("file://short.txt"))
    );
    assert_eq!(rows[5].1.content, doc);

    // CSV becomes "header: value" lines.
    let r = upload(
        &api,
        &[Part::file(
            "team.csv",
            "text/csv",
            b"name,role\nAda,dev\nBob,\n",
        )],
    )
    .await;
    assert_eq!(
        (r.body["format"].as_str(), r.body["char_count"].as_i64()),
        (Some("csv"), Some(30))
    );
    assert_eq!(
        entries(&db).await.last().unwrap().1.content,
        "name: Ada, role: dev\nname: Bob"
    );

    // Refusals, each leaving the knowledge base as it was.
    let cases: Vec<(Vec<Part<'_>>, StatusCode, &str)> = vec![
        (
            vec![Part::file("paper.pdf", "application/pdf", b"%PDF-1.7")],
            StatusCode::BAD_REQUEST,
            "Document is empty or could not be parsed",
        ),
        (
            vec![Part::file("tool.exe", "application/octet-stream", b"MZ")],
            StatusCode::BAD_REQUEST,
            "Unsupported file format. Supported: .md, .markdown, .txt, .csv, .pdf",
        ),
        (
            vec![Part::file("", "text/plain", b"hello")],
            StatusCode::BAD_REQUEST,
            "Filename is required",
        ),
        (
            vec![Part::file("empty.md", "text/markdown", b"  \n\n ")],
            StatusCode::BAD_REQUEST,
            "Document is empty or could not be parsed",
        ),
        (
            vec![Part::field("title", "no file")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("is_global", "maybe"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("category", "gossip"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("author_agent_id", "12abc"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("author_agent_id", "999999"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
    ];
    for (parts, status, detail) in cases {
        let r = upload(&api, &parts).await;
        assert_eq!(r.status, status, "{:?}", r.body);
        if !detail.is_empty() {
            assert!(
                r.body["detail"].as_str().unwrap().starts_with(detail),
                "{:?}",
                r.body
            );
        }
    }
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let r = upload(&api, &[Part::file("big.txt", "text/plain", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = api
        .send(
            api.client
                .post(format!("{}/memories/knowledge/upload", api.base))
                .json(&json!({"file": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(entries(&db).await.len(), 7);

    edge.stop().await;
    auth.stop().await;
}

/// The upload over the network as a dashboard sends it, with an author and a token.
#[tokio::test]
async fn upload_needs_a_token_and_records_the_author() {
    let db = TestDb::new().await;
    let auth: Auth = start_auth(&db, &[]).await;
    let gateway = format!("http://127.0.0.1:{}", gathering_testkit::free_port());
    let edge: Edge = start_edge(&db, &auth, &[("LLM_GATEWAY_URL", gateway.as_str())]).await;
    let api = edge.api();
    let (content_type, body) = multipart(&[Part::file("a.md", "text/markdown", b"# Title\nbody")]);
    let r = api
        .send(
            api.client
                .post(format!("{}/memories/knowledge/upload", api.base))
                .header("content-type", content_type.clone())
                .body(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (token, _) = api.user("up@example.com", "correct horse battery").await;
    let agent = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('Ada') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    let (content_type, body) = multipart(&[
        Part::file("a.md", "text/markdown", b"# Title\nbody"),
        Part::field("author_agent_id", &agent.to_string()),
    ]);
    let r = api
        .send(
            api.client
                .post(format!("{}/api/memories/knowledge/upload", api.base))
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let author: Option<i64> = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT author_agent_id FROM memory.knowledge_base", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(author, Some(agent));
    edge.stop().await;
    auth.stop().await;
}
