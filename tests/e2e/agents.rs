//! A background task whose executor process is killed with SIGKILL mid-task completes on
//! another executor, resuming from its checkpoint: steps finished before the kill are not
//! repeated (counted at a local webhook the task's tool calls).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use gathering_testkit::{GatheringProcess, TestDb, free_port};
use serde_json::json;

use crate::receiver::Receiver;

fn exe() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_gathering"))
}

#[tokio::test]
async fn heavy_a_background_task_survives_its_executor_being_killed() {
    let db = TestDb::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    let hook = Receiver::start().await;
    let base = fake.base_url();
    let gateway_vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        ("LLM_GATEWAY_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("OPENAI_BASE_URL".into(), base),
        ("OPENAI_API_KEY".into(), "sk-test".into()),
    ]);
    let gateway = gathering_llm_gateway::start(
        gathering_llm_gateway::Config::from_vars(&gateway_vars).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();

    let client = db.pool(1).get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, model_id) VALUES ('Worker', \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) SELECT $1, id, true FROM agent.skills WHERE name = 'notifications'",
            &[&agent],
        )
        .await
        .unwrap();
    let notify = |step: i64| {
        Reply::tool_call(
            "notify_webhook",
            json!({"url": hook.url, "payload": {"step": step}}),
        )
    };
    fake.push(notify(1));
    fake.push(notify(2).delay(Duration::from_secs(5))); // the first executor dies waiting for this
    fake.push(notify(2));
    fake.push(Reply::text("All steps done."));

    let task = gathering_agents::tasks::NewTask {
        agent_id: agent,
        goal: "Report two steps".into(),
        circle_id: None,
        goal_context: json!({}),
        max_steps: 10,
        timeout_seconds: 600,
        checkpoint_interval: 1,
        created_by: None,
    };
    let task_id = gathering_agents::tasks::create(&db.pool(2), &task, 5)
        .await
        .unwrap();

    let env = |port: u16| -> HashMap<String, String> {
        HashMap::from([
            ("DATABASE_URL".into(), db.url.clone()),
            ("GATHERING_ENV".into(), "development".into()),
            ("EXECUTOR_ADMIN_ADDR".into(), format!("127.0.0.1:{port}")),
            ("EXECUTOR_QUEUES".into(), "agents:2".into()),
            ("EXECUTOR_LEASE_SECONDS".into(), "2".into()),
            (
                "LLM_GATEWAY_URL".into(),
                format!("http://{}", gateway.grpc_addr),
            ),
            ("AGENT_DEFAULT_MODEL".into(), "openai/gpt-4o".into()),
            ("AGENT_EMBEDDING_MODEL".into(), "none".into()),
            ("GATHERING_HTTP_ALLOWLIST".into(), "127.0.0.1".into()),
            ("RUST_LOG".into(), "warn".into()),
        ])
    };
    let mut first = GatheringProcess::spawn(exe(), &["executor"], &env(free_port()));
    // Wait until step 1's tool ran and step 2's model call is in flight, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(hook.received().len() == 1 && fake.request_count() >= 2) {
        assert!(
            Instant::now() < deadline,
            "the first executor never reached step 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let (code, _, _) = first.wait_output().await;
    assert_eq!(code, None, "killed by a signal");
    let killed_at = Instant::now();

    let _second = GatheringProcess::spawn(exe(), &["executor"], &env(free_port()));
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status: String = client
            .query_one(
                "SELECT status::text FROM circle.background_tasks WHERE id = $1",
                &[&task_id],
            )
            .await
            .unwrap()
            .get(0);
        if status == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "task is {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("completed {:?} after the kill", killed_at.elapsed());
    let steps: Vec<i64> = hook
        .received()
        .iter()
        .map(|b| b["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2], "step 1 not repeated; step 2 done once");
    let row = client
        .query_one(
            "SELECT current_step, final_result FROM circle.background_tasks WHERE id = $1",
            &[&task_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 3);
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("All steps done.")
    );
}
