use std::collections::HashMap;

use gathering_agents::Llm;
use gathering_agents::memory::{self, NewMemory, Query, Scope};
use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Wire};

fn new(agent: i64, content: &str) -> NewMemory {
    NewMemory {
        scope: Scope::Agent(agent),
        content: content.into(),
        memory_type: "fact".into(),
        key: None,
        tags: vec!["t".into()],
        importance: 0.5,
        source_type: None,
    }
}

async fn agent(db: &TestDb) -> i64 {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('m') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn without_embeddings_recall_uses_text_search() {
    let db = TestDb::new().await;
    let id = agent(&db).await;
    let client = db.pool(1).get().await.unwrap();
    let stored = memory::remember(
        &client,
        None,
        &[
            new(id, "The client prefers PostgreSQL over MySQL"),
            new(id, "Deploys happen on Fridays"),
            new(id, "Lunch is at noon"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored[0].key.starts_with("auto_"), "{}", stored[0].key);
    assert!(!stored[0].embedded);
    let recall = memory::recall(
        &client,
        None,
        &Query {
            scope: Scope::Agent(id),
            text: "postgresql",
            limit: 5,
            threshold: 0.7,
            types: &[],
            tags: &[],
        },
    )
    .await
    .unwrap();
    assert_eq!(recall.method, "text");
    assert_eq!(
        recall.memories[0].value,
        "The client prefers PostgreSQL over MySQL"
    );
    assert!(recall.memories.iter().all(|m| !m.value.contains("Lunch")));
    // Hostile text is data.
    let odd = memory::recall(
        &client,
        None,
        &Query {
            scope: Scope::Agent(id),
            text: "%' OR 1=1 --",
            limit: 5,
            threshold: 0.0,
            types: &[],
            tags: &[],
        },
    )
    .await
    .unwrap();
    assert!(odd.memories.is_empty());
    let bad = memory::remember(
        &client,
        None,
        &[NewMemory {
            memory_type: "gossip".into(),
            ..new(id, "x")
        }],
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn with_embeddings_recall_uses_vector_similarity() {
    let db = TestDb::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    fake.set_embedding_dimensions(memory::DIMENSIONS);
    let vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        ("LLM_GATEWAY_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("OPENAI_BASE_URL".into(), fake.base_url()),
        ("OPENAI_API_KEY".into(), "sk-x".into()),
    ]);
    let gateway = gathering_llm_gateway::start(
        gathering_llm_gateway::Config::from_vars(&vars).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let llm = Llm::connect(
        &format!("http://{}", gateway.grpc_addr),
        "openai/text-embedding-3-small",
        gathering_testkit::service_auth("test"),
    )
    .unwrap();
    let id = agent(&db).await;
    let client = db.pool(1).get().await.unwrap();
    let stored = memory::remember(
        &client,
        Some(&llm),
        &[new(id, "alpha memory"), new(id, "beta memory")],
    )
    .await
    .unwrap();
    assert!(
        stored.iter().all(|s| s.embedded),
        "embedded through the gateway"
    );
    // The fake derives each vector from its input text: the same text is the nearest.
    let recall = memory::recall(
        &client,
        Some(&llm),
        &Query {
            scope: Scope::Agent(id),
            text: "beta memory",
            limit: 2,
            threshold: 0.0,
            types: &[],
            tags: &[],
        },
    )
    .await
    .unwrap();
    assert_eq!(recall.method, "vector");
    assert_eq!(recall.memories[0].value, "beta memory");
    assert!(
        (recall.memories[0].similarity - 1.0).abs() < 1e-3,
        "{}",
        recall.memories[0].similarity
    );
}
