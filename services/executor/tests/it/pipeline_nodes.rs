//! Pipeline node kinds run by real executors: sub-pipelines waited for, tool nodes (input
//! validated, config errors not retried), a scheduler-style run without a definition, an agent
//! node answered through the LLM gateway by a fake provider, and an unknown action failing.

use std::collections::HashMap;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_pipeline::parse_definition;
use gathering_pipeline::store::{self, NewPipeline, SettingsPatch};
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use serde_json::json;

use crate::pipelines::{api, edge, trigger};
use crate::receiver::Receiver;
use crate::support::{Stack, node};

#[tokio::test]
async fn execute_pipeline_runs_a_sub_pipeline_and_waits_for_it() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let child = stack
        .pipeline(
            json!([
                trigger(),
                api(
                    "inner",
                    hook.url("/inner"),
                    json!({"tool_name": "http_post", "json": {"from_parent": "{{t.order}}"}})
                )
            ]),
            json!([edge("t", "inner")]),
            SettingsPatch::default(),
        )
        .await;
    let parent = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "sub", "type": "action", "name": "sub", "config": {"action": "execute_pipeline", "pipeline_id": child, "trigger_data": {"order": "{{t.order}}"}}},
                api("outer", hook.url("/outer"), json!({"tool_name": "http_post", "json": {"child_status": "{{sub.outputs.inner.status}}"}})),
            ]),
            json!([edge("t", "sub"), edge("sub", "outer")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(parent, json!({"order": "A-7"})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let sub = node(&nodes, "sub");
    let child_run = sub.output_data["run_id"].as_i64().unwrap();
    assert_eq!(sub.child_run_id, Some(child_run));
    let (child_row, child_nodes) = stack.get(child_run).await;
    assert_eq!(child_row.status, "completed");
    assert_eq!(child_row.parent_run_id, Some(run_id));
    assert_eq!(child_row.trigger_data, json!({"order": "A-7"}));
    assert_eq!(node(&child_nodes, "inner").status, "completed");
    assert_eq!(hook.hits("/inner")[0].body, json!({"from_parent": "A-7"}));
    assert_eq!(hook.hits("/outer")[0].body, json!({"child_status": 200}));
    exec.stop().await;
}

#[tokio::test]
async fn tool_node_validates_input_and_config_errors_are_not_retried() {
    let stack = Stack::new().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "url", "type": "tool", "name": "url", "config": {"tool": "build_url", "input": {"base": "https://example.com", "path": "/items/{{t.id}}", "params": {"q": "{{t.q}}"}}}},
            ]),
            json!([edge("t", "url")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"id": 7, "q": "x y"})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let out = &node(&nodes, "url").output_data;
    assert_eq!(out["data"]["url"], "https://example.com/items/7?q=x+y");

    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "bad", "type": "tool", "name": "bad", "config": {"tool": "build_url", "input": {"nope": 1}, "retry": {"max_attempts": 4, "backoff_base": 0.01}}},
                {"id": "ghost", "type": "tool", "name": "ghost", "config": {"tool": "no_such_tool"}},
            ]),
            json!([edge("t", "bad"), edge("t", "ghost")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "failed");
    let bad = node(&nodes, "bad");
    let ghost = node(&nodes, "ghost");
    // Whichever failed first failed the run; the other was stopped or failed too.
    assert!(bad.status == "failed" || ghost.status == "failed");
    for n in [bad, ghost] {
        if n.status == "failed" {
            assert_eq!(n.error_kind.as_deref(), Some("config"));
            assert_eq!(n.retry_count, 0, "configuration errors are not retried");
        }
    }
    if bad.status == "failed" {
        assert!(
            bad.error_message
                .as_deref()
                .unwrap()
                .contains("Invalid parameters for tool 'build_url'"),
            "{:?}",
            bad.error_message
        );
    }
    exec.stop().await;
}

#[tokio::test]
async fn scheduler_style_run_without_definition_uses_the_pipelines_own() {
    let stack = Stack::new().await;
    let hook = Receiver::start().await;
    let exec = stack.executor(&[]).await;
    let pid = stack
        .pipeline(
            json!([trigger(), api("a", hook.url("/sched"), json!({}))]),
            json!([edge("t", "a")]),
            SettingsPatch::default(),
        )
        .await;
    // What the scheduler does: a pending run row and the job, nothing else.
    let client = stack.pool.get().await.unwrap();
    let run_id: i64 = client
        .query_one(
            "INSERT INTO circle.pipeline_runs (pipeline_id, trigger_data) VALUES ($1, '{\"s\": 1}') RETURNING id",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    gathering_queue::enqueue_in(&client, &store::run_job(run_id))
        .await
        .unwrap();
    let (run, nodes) = stack.finished(run_id, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    assert_eq!(nodes.len(), 2);
    assert_eq!(hook.hits("/sched").len(), 1);
    exec.stop().await;
}

#[tokio::test]
async fn agent_node_answers_through_the_gateway_and_a_fake_provider() {
    let stack = Stack::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    fake.push(Reply::text("The order is ready."));
    let base = fake.base_url();
    let mut vars: HashMap<String, String> = stack.vars(&[]);
    vars.extend([
        ("LLM_GATEWAY_ADDR".to_string(), "127.0.0.1:0".to_string()),
        (
            "LLM_GATEWAY_HTTP_ADDR".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        ("OPENAI_BASE_URL".to_string(), base),
        ("OPENAI_API_KEY".to_string(), "sk-test-key".to_string()),
    ]);
    let gw = gathering_llm_gateway::Config::from_vars(&vars).unwrap();
    let gateway_stop = Shutdown::new();
    let gateway = gathering_llm_gateway::start(gw, gateway_stop.clone())
        .await
        .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let exec = stack
        .executor(&[("LLM_GATEWAY_URL", gateway_url.as_str())])
        .await;
    let client = stack.pool.get().await.unwrap();
    let agent_id: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, persona_id, model_id) VALUES ('Sophie', \
                 (SELECT id FROM agent.personas ORDER BY id LIMIT 1), \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                // The dashboard sends agent_id as a number.
                {"id": "ask", "type": "agent", "name": "ask", "config": {"agent_id": agent_id, "task": "Summarise order {{t.order}}"}},
            ]),
            json!([edge("t", "ask")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({"order": "A-7"})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    let out = &node(&nodes, "ask").output_data;
    assert_eq!(out["result"], "The order is ready.");
    assert_eq!(out["simulated"], false);
    assert_eq!(out["agent_id"], agent_id);
    assert!(out["tokens"].as_u64().unwrap() > 0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let messages = requests[0].body["messages"].as_array().unwrap().clone();
    let user = messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user.starts_with("Summarise order A-7"), "{user}");
    assert!(
        user.contains("Context from previous nodes:\nt: {\"order\":\"A-7\"}"),
        "{user}"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-test-key")
    );

    // An unknown agent is a configuration error: not retried, the provider is not called.
    let pid = stack
        .pipeline(
            json!([
                trigger(),
                {"id": "ask", "type": "agent", "name": "ask", "config": {"agent_id": "999999", "task": "x", "retry": {"max_attempts": 3, "backoff_base": 0.01}}},
            ]),
            json!([edge("t", "ask")]),
            SettingsPatch::default(),
        )
        .await;
    let run_id = stack.run(pid, json!({})).await;
    let (run, nodes) = stack.finished(run_id, 30).await;
    assert_eq!(run.status, "failed");
    assert_eq!(node(&nodes, "ask").error_kind.as_deref(), Some("config"));
    assert_eq!(node(&nodes, "ask").retry_count, 0);
    assert_eq!(fake.requests().len(), 1);
    exec.stop().await;
    gateway_stop.trigger();
}

#[tokio::test]
async fn an_action_node_with_an_unknown_action_fails_instead_of_claiming_it_ran() {
    let stack = Stack::new().await;
    let exec = stack.executor(&[]).await;
    // Stored as an earlier build allowed (validation now refuses it at create time).
    let def = parse_definition(
        &json!([
            trigger(),
            {"id": "x", "type": "action", "name": "x", "config": {"action": "launch_rockets"}},
        ]),
        &json!([edge("t", "x")]),
    )
    .unwrap();
    assert!(
        gathering_pipeline::validate(&def)
            .iter()
            .any(|e| e.contains("'x'") && e.contains("launch_rockets")),
        "validation names the node and the action"
    );
    let client = stack.pool.get().await.unwrap();
    let pid = store::create_pipeline(
        &client,
        &NewPipeline {
            name: "legacy",
            description: None,
            status: "active",
            definition: &def,
            settings: SettingsPatch::default(),
        },
    )
    .await
    .unwrap()
    .id;
    // Starting it validates first: the run fails at once, naming the node; no node ran.
    let mut client = stack.pool.get().await.unwrap();
    let run = store::start_run(&mut client, pid, &json!({}))
        .await
        .unwrap();
    assert_eq!(run.status, "failed");
    let message = run.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("'x'") && message.contains("launch_rockets"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (run, nodes) = stack.get(run.id).await;
    assert_eq!(run.status, "failed");
    assert!(
        nodes.iter().all(|n| n.node_id != "x"),
        "the action never ran"
    );
    exec.stop().await;
}
