//! Circles and conversations on a real executor (in-process, the binary's `start`), through a
//! real LLM gateway on a fake OpenAI provider that answers at once, against the local
//! PostgreSQL. `cargo bench -p gathering-executor --bench circles` (needs `DATABASE_URL`).
//!
//! - The model call alone: sequential completions (and streamed completions) through the
//!   gateway, the cost every task and turn pays before the platform's own.
//! - Throughput: a 4-agent circle drains 200 tasks (`max_concurrent_tasks` 16, executor
//!   `circles:16`), without and with review (one and two model calls per task).
//! - Platform overhead per task: the same with one slot (tasks run one after the other), the
//!   time per task minus its model calls — routing, admission, the job's claim, the fenced
//!   writes with their events, the review's job and verdict.
//! - Per-turn overhead of a conversation: 2 agents, 40 turns, the time per turn minus a
//!   streamed model call (the summary's call is taken out).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gathering_agents::Llm;
use gathering_agents::llm::{Message, Request};
use gathering_circles::circles::{self, NewCircle, NewMember};
use gathering_circles::conversations::{self, NewConversation};
use gathering_circles::tasks::{self, NewTask};
use gathering_circles::{Circles, CirclesConfig};
use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use serde_json::Value;

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

fn reply(body: &Value) -> Option<Reply> {
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    if system.contains("Tu relis le travail") {
        return Some(Reply::text(
            r#"{"verdict": "approve", "comments": "fine", "quality_score": 0.9}"#,
        ));
    }
    Some(Reply::text("done"))
}

async fn agent(pool: &Pool, name: &str) -> i64 {
    pool.get()
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

async fn circle(c: &Circles, name: &str, review: bool, slots: i32, agents: &[i64]) {
    circles::create(
        c,
        &NewCircle {
            name: name.into(),
            display_name: None,
            description: None,
            require_review: review,
            auto_route: true,
            max_concurrent_tasks: slots,
            project_id: None,
            max_review_rounds: None,
            owner: None,
        },
    )
    .await
    .unwrap();
    for a in agents {
        let m = NewMember {
            agent_id: *a,
            role: None,
            competencies: vec!["rust".into()],
            can_review: vec!["quality".into()],
        };
        circles::add_member(c, name, &m, false).await.unwrap();
    }
    circles::start(c, name).await.unwrap();
}

/// Mean latency of `n` sequential model calls through the gateway (streamed or not).
async fn model_call(llm: &Llm, n: usize, stream: bool) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let req = Request {
            model: "openai/gpt-4o",
            messages: vec![Message {
                role: "user".into(),
                content: format!("call {i}"),
                ..Default::default()
            }],
            tools: Vec::new(),
            max_tokens: Some(100),
            temperature: Some(0.7),
            agent_id: 0,
            request_id: "",
        };
        if stream {
            llm.stream("bench", req, |_| {}).await.unwrap();
        } else {
            llm.complete("bench", req).await.unwrap();
        }
    }
    started.elapsed() / n as u32
}

/// Creates `n` tasks and waits until they are all completed; returns the wall time.
async fn drain(c: &Circles, name: &str, n: usize) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let t = NewTask {
            title: format!("task {i}"),
            required_competencies: vec!["rust".into()],
            priority: 5,
            ..NewTask::default()
        };
        tasks::create(c, name, &t).await.unwrap();
    }
    let client = c.pool.get().await.unwrap();
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE t.status IN ('completed', 'failed')), \
                        count(*) FILTER (WHERE t.status = 'failed') \
                 FROM circle.tasks t JOIN circle.circles ci ON ci.id = t.circle_id \
                 WHERE ci.name = $1 AND ci.is_active",
                &[&name],
            )
            .await
            .unwrap();
        let (done, failed): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(failed, 0, "no task fails");
        if done as usize == n {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let pool = db.pool(8);
    let fake = FakeProvider::start(Wire::OpenAi).await;
    fake.respond_with(reply);
    let base = fake.base_url();
    let stop = Shutdown::new();
    let gw = gathering_llm_gateway::Config::from_vars(&vars(
        &db,
        &[
            ("LLM_GATEWAY_ADDR", "127.0.0.1:0"),
            ("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-bench"),
        ],
    ))
    .unwrap();
    let gateway = gathering_llm_gateway::start(gw, stop.clone())
        .await
        .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let config = gathering_executor::Config::from_vars(&vars(
        &db,
        &[
            ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
            ("LLM_GATEWAY_URL", gateway_url.as_str()),
            ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
            ("AGENT_EMBEDDING_MODEL", "none"),
            ("EXECUTOR_QUEUES", "circles:16"),
        ],
    ))
    .unwrap();
    let executor = gathering_executor::start(config, stop.clone())
        .await
        .unwrap();
    let llm = Llm::connect(&gateway_url, "", gathering_testkit::service_auth("bench")).unwrap();
    let c = Circles::new(pool.clone(), CirclesConfig::default());

    model_call(&llm, 20, false).await; // warm-up
    let call = model_call(&llm, 200, false).await;
    let streamed = model_call(&llm, 200, true).await;
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| model call through the gateway (fake answers at once), mean of 200 | {} |",
        ms(call)
    );
    println!("| streamed model call, mean of 200 | {} |", ms(streamed));

    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(agent(&pool, &format!("agent{i}")).await);
    }
    let rows = [
        ("warm", false, 16, 20),
        ("no review", false, 16, 200),
        ("review", true, 16, 200),
    ];
    for (label, review, slots, n) in rows {
        let name = format!("bench-{}", label.replace(' ', "-"));
        circle(&c, &name, review, slots, &agents).await;
        let took = drain(&c, &name, n).await;
        if label == "warm" {
            continue;
        }
        println!(
            "| 4 agents drain {n} tasks, {label}, 16 slots: time, tasks/s | {:.2} s, {:.1} tasks/s |",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
    for (label, review, calls) in [("no review", false, 1u32), ("review", true, 2)] {
        let name = format!("serial-{}", label.replace(' ', "-"));
        circle(&c, &name, review, 1, &agents).await;
        let n = 50;
        let per_task = drain(&c, &name, n).await / n as u32;
        let overhead = per_task.saturating_sub(call * calls);
        println!(
            "| one task at a time, {label}: time per task, platform overhead beyond {calls} model call(s) | {}, {} |",
            ms(per_task),
            ms(overhead)
        );
    }

    // A conversation: 2 agents, 40 turns (+ the summary's call).
    circle(&c, "talk", false, 4, &agents[..2]).await;
    let turns = 40;
    let conv = conversations::create(
        &c,
        "talk",
        &NewConversation {
            topic: "bench".into(),
            agent_ids: agents[..2].to_vec(),
            max_turns: turns,
            initial_prompt: String::new(),
            strategy: "round_robin".into(),
            created_by: None,
        },
    )
    .await
    .unwrap();
    let id = conv["conversation_id"].as_i64().unwrap();
    let started = Instant::now();
    conversations::start(&c, id).await.unwrap();
    let client = pool.get().await.unwrap();
    loop {
        let status: String = client
            .query_one(
                "SELECT status::text FROM communication.conversations WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        if status != "active" {
            assert_eq!(status, "completed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed().saturating_sub(call);
    let per_turn = total / turns as u32;
    println!(
        "| conversation, 2 agents, {turns} turns: time per turn, overhead beyond a streamed call | {}, {} |",
        ms(per_turn),
        ms(per_turn.saturating_sub(streamed))
    );
    stop.trigger();
    let _ = executor.wait().await;
}
