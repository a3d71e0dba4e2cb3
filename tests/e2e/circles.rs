//! Circle work and conversations survive the SIGKILL of the executor process running them:
//! another executor takes the job over (the queue's lease), a task's result is stored once
//! and reviewed once, and a conversation resumes after its last stored message (turns already
//! stored are not taken again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gathering_circles::circles::{self, NewCircle, NewMember};
use gathering_circles::conversations::{self, NewConversation};
use gathering_circles::tasks::{self, NewTask};
use gathering_circles::{Circles, CirclesConfig};
use gathering_core::Shutdown;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use gathering_testkit::{GatheringProcess, TestDb, free_port};
use serde_json::Value;

fn exe() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_gathering"))
}

fn user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn is_review(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("Tu relis le travail"))
}

struct World {
    db: TestDb,
    fake: FakeProvider,
    gateway_url: String,
    _gateway_stop: Shutdown,
    circles: Circles,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    let gateway_vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        ("LLM_GATEWAY_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("OPENAI_BASE_URL".into(), fake.base_url()),
        ("OPENAI_API_KEY".into(), "sk-test".into()),
    ]);
    let stop = Shutdown::new();
    let gateway = gathering_llm_gateway::start(
        gathering_llm_gateway::Config::from_vars(&gateway_vars).unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();
    let circles = Circles::new(db.pool(4), CirclesConfig::default());
    World {
        gateway_url: format!("http://{}", gateway.grpc_addr),
        _gateway_stop: stop,
        fake,
        circles,
        db,
    }
}

impl World {
    async fn agent(&self, name: &str) -> i64 {
        self.db
            .pool(1)
            .get()
            .await
            .unwrap()
            .query_one(
                "INSERT INTO agent.agents (name, model_id) VALUES ($1, \
                     (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                      WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
                &[&name],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn circle(&self, members: &[(i64, &str, &str)]) {
        circles::create(
            &self.circles,
            &NewCircle {
                name: "core".into(),
                display_name: None,
                description: None,
                require_review: true,
                auto_route: true,
                max_concurrent_tasks: 5,
                project_id: None,
                max_review_rounds: None,
                owner: None,
            },
        )
        .await
        .unwrap();
        for (agent, comp, review) in members {
            let m = NewMember {
                agent_id: *agent,
                role: None,
                competencies: vec![comp.to_string()],
                can_review: vec![review.to_string()],
            };
            circles::add_member(&self.circles, "core", &m, false)
                .await
                .unwrap();
        }
        circles::start(&self.circles, "core").await.unwrap();
    }

    fn executor(&self) -> GatheringProcess {
        let env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.db.url.clone()),
            ("GATHERING_ENV".into(), "development".into()),
            (
                "EXECUTOR_ADMIN_ADDR".into(),
                format!("127.0.0.1:{}", free_port()),
            ),
            ("EXECUTOR_QUEUES".into(), "circles:4".into()),
            ("EXECUTOR_LEASE_SECONDS".into(), "2".into()),
            ("LLM_GATEWAY_URL".into(), self.gateway_url.clone()),
            ("AGENT_DEFAULT_MODEL".into(), "openai/gpt-4o".into()),
            ("AGENT_EMBEDDING_MODEL".into(), "none".into()),
            ("RUST_LOG".into(), "warn".into()),
        ]);
        GatheringProcess::spawn(exe(), &["executor"], &env)
    }

    async fn scalar_i64(
        &self,
        sql: &str,
        params: &[&(dyn gathering_db::tokio_postgres::types::ToSql + Sync)],
    ) -> i64 {
        self.db
            .pool(1)
            .get()
            .await
            .unwrap()
            .query_one(sql, params)
            .await
            .unwrap()
            .get(0)
    }
}

async fn until(secs: u64, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn heavy_a_circle_task_survives_its_executor_being_killed() {
    let w = world().await;
    let ann = w.agent("ann").await;
    let bob = w.agent("bob").await;
    w.circle(&[(ann, "rust", ""), (bob, "docs", "quality")])
        .await;
    let works = Arc::new(AtomicUsize::new(0));
    let n = works.clone();
    w.fake.respond_with(move |body| {
        if is_review(body) {
            return Some(Reply::text(
                r#"{"verdict": "approve", "comments": "ok", "quality_score": 0.7}"#,
            ));
        }
        if user(body).starts_with("Tâche #") {
            // The first executor dies waiting for this answer.
            return Some(match n.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::text("never seen").delay(Duration::from_secs(30)),
                _ => Reply::text("parser written"),
            });
        }
        None
    });
    let task = tasks::create(
        &w.circles,
        "core",
        &NewTask {
            title: "Parser".into(),
            required_competencies: vec!["rust".into()],
            priority: 5,
            ..NewTask::default()
        },
    )
    .await
    .unwrap();
    let id = task["id"].as_i64().unwrap();

    let mut first = w.executor();
    until(30, "the first executor's model call", async || {
        works.load(Ordering::SeqCst) >= 1
    })
    .await;
    first.kill9();
    assert_eq!(first.wait_output().await.0, None, "killed by a signal");
    let killed = Instant::now();
    let _second = w.executor();
    until(
        40,
        "the task's completion on the second executor",
        async || tasks::get(&w.circles, "core", id).await.unwrap()["status"] == "completed",
    )
    .await;
    println!("completed {:?} after the kill", killed.elapsed());

    let t = tasks::get(&w.circles, "core", id).await.unwrap();
    assert_eq!(t["result"], "parser written");
    assert_eq!(t["reviewer_id"], bob);
    assert_eq!(
        works.load(Ordering::SeqCst),
        2,
        "the lost attempt and the one that finished"
    );
    let events = |kind: &'static str| {
        let w = &w;
        async move {
            w.scalar_i64(
                "SELECT count(*) FROM events.log WHERE kind = $1 AND (payload->>'task_id')::int8 = $2",
                &[&kind, &id],
            )
            .await
        }
    };
    assert_eq!(events("task.started").await, 1);
    assert_eq!(events("task.review_requested").await, 1);
    assert_eq!(events("task.completed").await, 1);
    let reviews = w
        .scalar_i64(
            "SELECT count(*) FROM review.reviews WHERE task_id = $1",
            &[&id],
        )
        .await;
    assert_eq!(reviews, 1);
}

#[tokio::test]
async fn heavy_a_conversation_resumes_after_its_executor_is_killed() {
    let w = world().await;
    let ann = w.agent("ann").await;
    let bob = w.agent("bob").await;
    w.circle(&[(ann, "a", ""), (bob, "b", "")]).await;
    let bob_turns = Arc::new(AtomicUsize::new(0));
    let n = bob_turns.clone();
    w.fake.respond_with(move |body| {
        let u = user(body);
        if u.contains("C'est ton tour, bob") && n.fetch_add(1, Ordering::SeqCst) == 0 {
            // Turn 2: the first executor dies waiting for it.
            return Some(Reply::text("lost").delay(Duration::from_secs(30)));
        }
        if let Some(rest) = u.split("C'est ton tour, ").nth(1) {
            let name = rest.split('.').next().unwrap_or_default().to_owned();
            return Some(Reply::text(format!("{name} speaks")));
        }
        Some(Reply::text("Summary"))
    });
    let conv = conversations::create(
        &w.circles,
        "core",
        &NewConversation {
            topic: "Kill me".into(),
            agent_ids: vec![ann, bob],
            max_turns: 4,
            initial_prompt: String::new(),
            strategy: "round_robin".into(),
            created_by: None,
        },
    )
    .await
    .unwrap();
    let id = conv["conversation_id"].as_i64().unwrap();
    conversations::start(&w.circles, id).await.unwrap();

    let mut first = w.executor();
    until(30, "turn 2 in flight on the first executor", async || {
        bob_turns.load(Ordering::SeqCst) >= 1
    })
    .await;
    let stored = w
        .scalar_i64(
            "SELECT count(*) FROM communication.messages WHERE conversation_id = $1",
            &[&id],
        )
        .await;
    assert_eq!(stored, 1, "turn 1 stored before the kill");
    first.kill9();
    first.wait_output().await;
    let _second = w.executor();
    until(
        40,
        "the conversation's completion on the second executor",
        async || {
            let c = w.circles.pool.get().await.unwrap();
            let s: String = c
                .query_one(
                    "SELECT status::text FROM communication.conversations WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get(0);
            s == "completed"
        },
    )
    .await;

    let c = w.circles.pool.get().await.unwrap();
    let rows = c
        .query(
            "SELECT turn, agent_name, content FROM communication.messages WHERE conversation_id = $1 ORDER BY turn",
            &[&id],
        )
        .await
        .unwrap();
    let turns: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(2))).collect();
    assert_eq!(
        turns,
        vec![
            (1, "ann speaks".to_string()),
            (2, "bob speaks".to_string()),
            (3, "ann speaks".to_string()),
            (4, "bob speaks".to_string()),
        ]
    );
    let ann_first_turns = w
        .fake
        .requests()
        .iter()
        .filter(|r| {
            user(&r.body).contains("C'est ton tour, ann") && user(&r.body).contains("Commençons")
        })
        .count();
    assert_eq!(ann_first_turns, 1, "turn 1 was not taken again");
    assert_eq!(
        bob_turns.load(Ordering::SeqCst),
        3,
        "turn 2 twice (lost, redone), turn 4 once"
    );
}
