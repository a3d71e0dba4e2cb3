//! `/pipelines` through a real edge: CRUD with A13 validation (422 lists), the contract's
//! shapes, runs answered at once and executed by a real executor, node runs and logs in both
//! shapes, cancel, and the run/node events on the WebSocket.

use std::collections::HashMap;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::ws;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, eventually, start_auth, start_edge};

async fn executor(db: &TestDb) -> (Shutdown, gathering_executor::Started) {
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", db.url.as_str()),
        ("GATHERING_ENV", "development"),
        ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
        ("EXECUTOR_QUEUES", "pipelines:4"),
        ("LLM_GATEWAY_URL", "http://127.0.0.1:9"),
        ("AGENT_EMBEDDING_MODEL", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = gathering_executor::Config::from_vars(&vars).unwrap();
    let stop = Shutdown::new();
    let started = gathering_executor::start(config, stop.clone())
        .await
        .unwrap();
    (stop, started)
}

async fn put(api: &Api, path: &str, body: &Value) -> crate::support::Reply {
    api.send(api.client.put(format!("{}{path}", api.base)).json(body))
        .await
}

async fn delete(api: &Api, path: &str) -> crate::support::Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

fn msgs(body: &Value) -> Vec<String> {
    body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["msg"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn crud_validates_with_the_a13_messages_and_keeps_the_contract_shapes() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();

    // Invalid definitions: 422 with every A13 message, nothing stored.
    let r = api
        .post(
            "/pipelines",
            None,
            &json!({
                "name": "bad", "status": "active",
                "nodes": [
                    {"id": "a", "type": "agent", "name": "A", "config": {}},
                    {"id": "b", "type": "teleport", "name": "B"},
                ],
                "edges": [{"id": "e1", "from": "a", "to": "zz"}],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        msgs(&r.body),
        vec![
            "Node 'b' has invalid type: 'teleport'. Valid types: ['action', 'agent', 'approval', 'condition', 'delay', 'parallel', 'tool', 'trigger']",
            "Edge 'e1' references unknown target node: 'zz'",
        ]
    );
    let r = api
        .post(
            "/pipelines",
            None,
            &json!({"name": "cycle", "nodes": [
                {"id": "a", "type": "parallel", "name": "A"}, {"id": "b", "type": "condition", "name": "B"}],
                "edges": [{"id": "e1", "from": "a", "to": "b"}, {"id": "e2", "from_node": "b", "to_node": "a"}]}),
        )
        .await;
    assert_eq!(
        msgs(&r.body),
        vec![
            "Pipeline contains a cycle: ['a', 'b', 'a']",
            "Condition node 'b' is missing required config key 'condition'",
        ]
    );
    let r = api
        .post(
            "/pipelines",
            None,
            &json!({"name": "x", "nodes": [{"type": "agent"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "nodes", "0", "id"])
    );
    let r = api
        .post("/pipelines", None, &json!({"name": "", "status": "live"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        msgs(&r.body),
        vec![
            "name must be 1 to 255 characters",
            "status must be one of active, paused, draft",
            "Pipeline must have at least one node",
        ]
    );
    assert_eq!(api.get("/pipelines", None).await.body["total"], 0);

    // A draft may start empty.
    let r = api
        .post(
            "/pipelines",
            None,
            &json!({"name": "Draft", "description": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["nodes"], json!([]));
    assert_eq!(r.body["timeout_seconds"], 3600);
    let draft = r.body["id"].as_i64().unwrap();

    // The dashboard's shapes: numeric agent_id, editor keys, from_node/to_node.
    let r = api
        .post(
            "/api/pipelines",
            None,
            &json!({
                "name": "Editor", "status": "draft", "timeout_seconds": 120,
                "nodes": [
                    {"id": "t", "type": "trigger", "name": "Start", "position": {"x": 10, "y": 20}},
                    {"id": "a", "type": "agent", "name": "Ask", "config": {"agent_id": 3, "task_prompt": "hi", "agent_name": "Sophie"}},
                ],
                "edges": [{"id": "e1", "from_node": "t", "to_node": "a", "label": "go"}],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["nodes"][1]["config"]["agent_id"], 3);
    assert_eq!(r.body["nodes"][1]["config"]["agent_name"], "Sophie");
    assert_eq!(r.body["nodes"][0]["position"], json!({"x": 10, "y": 20}));
    assert_eq!(
        r.body["edges"][0],
        json!({"id": "e1", "from": "t", "to": "a", "condition": null, "label": "go"})
    );
    assert_eq!(r.body["timeout_seconds"], 120);
    for key in [
        "created_at",
        "updated_at",
        "last_run",
        "run_count",
        "success_count",
        "error_count",
        "max_retries_per_node",
        "retry_backoff_base",
        "retry_backoff_max",
    ] {
        assert!(r.body.get(key).is_some(), "missing {key}");
    }

    // Update: nothing to update returns the pipeline; a bad update is refused whole.
    let r = put(&api, &format!("/pipelines/{id}"), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "Editor");
    let r = put(
        &api,
        &format!("/pipelines/{id}"),
        &json!({"name": "Renamed", "edges": [{"id": "e9", "from": "t", "to": "ghost"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        msgs(&r.body),
        vec!["Edge 'e9' references unknown target node: 'ghost'"]
    );
    let r = api.get(&format!("/pipelines/{id}"), None).await;
    assert_eq!(r.body["name"], "Editor");
    let r = put(
        &api,
        &format!("/pipelines/{id}"),
        &json!({"name": "Renamed", "status": "active", "max_retries_per_node": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            r.body["name"].as_str(),
            r.body["status"].as_str(),
            r.body["max_retries_per_node"].as_i64()
        ),
        (Some("Renamed"), Some("active"), Some(5))
    );
    // An empty draft cannot become active.
    let r = put(
        &api,
        &format!("/pipelines/{draft}"),
        &json!({"status": "active"}),
    )
    .await;
    assert_eq!(msgs(&r.body), vec!["Pipeline must have at least one node"]);

    // Validate, toggle, list with counts, delete.
    let r = api
        .post(&format!("/pipelines/{id}/validate"), None, &json!({}))
        .await;
    assert_eq!(r.body, json!({"valid": true, "errors": []}));
    let r = api
        .post(&format!("/pipelines/{draft}/validate"), None, &json!({}))
        .await;
    assert_eq!(
        r.body,
        json!({"valid": false, "errors": ["Pipeline must have at least one node"]})
    );
    let r = api
        .post(&format!("/pipelines/{id}/toggle"), None, &json!({}))
        .await;
    assert_eq!(r.body["status"], "paused");
    let r = api
        .post(&format!("/pipelines/{draft}/toggle"), None, &json!({}))
        .await;
    assert_eq!(r.body["status"], "active");
    let r = api.get("/pipelines", None).await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["counts"], json!({"active": 1, "paused": 1}));
    let r = api.get("/pipelines?status=paused&limit=5", None).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(
        api.get("/pipelines?status=bogus", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        delete(&api, &format!("/pipelines/{draft}")).await.status,
        StatusCode::NO_CONTENT
    );
    let r = delete(&api, &format!("/pipelines/{draft}")).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Pipeline not found"))
    );
    assert_eq!(
        api.get("/pipelines/abc", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn runs_are_answered_at_once_executed_by_an_executor_and_cancellable() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let (exec_stop, exec) = executor(&db).await;

    let mut socket =
        ws::connect(&format!("{}/ws", edge.base.replacen("http://", "ws://", 1))).await;
    assert_eq!(
        ws::next_json(&mut socket, Duration::from_secs(10)).await["type"],
        "connected"
    );
    ws::send_json(
        &mut socket,
        &json!({"action": "subscribe", "topics": ["pipelines"]}),
    )
    .await;
    assert_eq!(
        ws::next_json(&mut socket, Duration::from_secs(10)).await["type"],
        "subscribed"
    );

    let r = api
        .post(
            "/pipelines",
            None,
            &json!({
                "name": "Links", "status": "active",
                "nodes": [
                    {"id": "t", "type": "trigger", "name": "Start"},
                    {"id": "url", "type": "tool", "name": "URL", "config": {"tool": "build_url", "input": {"base": "https://example.com", "path": "{{t.page}}"}}},
                    {"id": "ok", "type": "condition", "name": "ok?", "config": {"condition": "url"}},
                ],
                "edges": [{"id": "e1", "from": "t", "to": "url"}, {"id": "e2", "from": "url", "to": "ok"}],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pid = r.body["id"].as_i64().unwrap();

    // 201 with the run at once, pending; the executor completes it.
    let r = api
        .post(
            &format!("/pipelines/{pid}/run"),
            None,
            &json!({"trigger_data": {"page": "docs"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["trigger_data"], json!({"page": "docs"}));
    let run_id = r.body["id"].as_i64().unwrap();
    let run_path = format!("/pipelines/{pid}/runs/{run_id}");
    assert!(
        eventually(20, || async {
            api.get(&run_path, None).await.body["status"] == "completed"
        })
        .await
    );
    let run = api.get(&run_path, None).await.body;
    for key in [
        "id",
        "pipeline_id",
        "status",
        "started_at",
        "completed_at",
        "current_node",
        "logs",
        "trigger_data",
        "error_message",
        "created_at",
        "duration_seconds",
    ] {
        assert!(run.get(key).is_some(), "run lacks {key}");
    }
    let logs = run["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let url_log = logs.iter().find(|l| l["node_id"] == "url").unwrap();
    assert_eq!(url_log["level"], "info");
    assert_eq!(url_log["status"], "completed");
    assert_eq!(url_log["output"]["data"]["url"], "https://example.com/docs");
    assert!(url_log["message"].as_str().unwrap().contains("completed"));
    assert_eq!(url_log["retry_count"], 0);
    let nodes = api.get(&format!("{run_path}/nodes"), None).await.body;
    assert_eq!(nodes["total"], 3);
    assert_eq!(nodes["nodes"][0]["node_type"], "trigger");
    let l = api.get(&format!("{run_path}/logs"), None).await.body;
    assert_eq!(l["logs"].as_array().unwrap().len(), 3);
    let runs = api.get(&format!("/pipelines/{pid}/runs"), None).await.body;
    assert_eq!(
        (runs["total"].as_i64(), runs["pipeline_id"].as_i64()),
        (Some(1), Some(pid))
    );
    let p = api.get(&format!("/pipelines/{pid}"), None).await.body;
    assert_eq!(
        (p["run_count"].as_i64(), p["success_count"].as_i64()),
        (Some(1), Some(1))
    );

    // The run and node events reached the WebSocket.
    let mut seen = Vec::new();
    while !seen.contains(&"pipeline_run.completed".to_string()) {
        let frame = ws::next_json(&mut socket, Duration::from_secs(10)).await;
        if frame["data"]["run_id"] == run_id {
            seen.push(frame["type"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("pipeline_run.started")
    );
    assert!(seen.contains(&"pipeline_node.completed".to_string()));

    // Cancel: a finished run cannot be; a waiting one is, with its nodes.
    let r = api
        .post(&format!("{run_path}/cancel"), None, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Cannot cancel run in 'completed' status")
        )
    );
    let r = put(
        &api,
        &format!("/pipelines/{pid}"),
        &json!({"nodes": [{"id": "t", "type": "trigger", "name": "Start"}, {"id": "w", "type": "delay", "name": "Wait", "config": {"seconds": 60}}],
                "edges": [{"id": "e1", "from": "t", "to": "w"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = api
        .post(&format!("/pipelines/{pid}/run"), None, &json!({}))
        .await;
    let waiting = r.body["id"].as_i64().unwrap();
    let waiting_path = format!("/pipelines/{pid}/runs/{waiting}");
    assert!(
        eventually(20, || async {
            let nodes = api.get(&format!("{waiting_path}/nodes"), None).await.body;
            nodes["nodes"][1]["status"] == "running"
        })
        .await
    );
    let r = api
        .post(&format!("{waiting_path}/cancel"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["error_message"], "Pipeline run was cancelled");
    let nodes = api.get(&format!("{waiting_path}/nodes"), None).await.body;
    assert_eq!(nodes["nodes"][1]["status"], "cancelled");
    let r = api
        .get(&format!("/pipelines/{pid}/runs?status=cancelled"), None)
        .await;
    assert_eq!(r.body["total"], 1);

    // Errors: unknown run or pipeline, a paused pipeline, a bad body.
    let r = api
        .get(&format!("/pipelines/{pid}/runs/999999"), None)
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Run not found"))
    );
    let r = api.post("/pipelines/999999/run", None, &json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .post(
            &format!("/pipelines/{pid}/run"),
            None,
            &json!({"trigger_data": [1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.post(&format!("/pipelines/{pid}/toggle"), None, &json!({}))
        .await;
    let r = api
        .post(&format!("/pipelines/{pid}/run"), None, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Cannot run pipeline in 'paused' status. Activate it first.")
        )
    );
    // A run without a body is accepted (the body is optional).
    api.post(&format!("/pipelines/{pid}/toggle"), None, &json!({}))
        .await;
    let r = api
        .send(api.client.post(format!("{}/pipelines/{pid}/run", api.base)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["trigger_data"], json!({}));

    // A definition stored invalid (by hand) gives a failed run, not an HTTP error.
    let client = db.pool(1).get().await.unwrap();
    client
        .execute(
            "UPDATE circle.pipelines SET nodes = '[{\"id\": \"x\", \"type\": \"agent\", \"name\": \"x\"}]', edges = '[]' WHERE id = $1",
            &[&pid],
        )
        .await
        .unwrap();
    let r = api
        .post(&format!("/pipelines/{pid}/run"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["status"], "failed");
    assert_eq!(
        r.body["error_message"],
        "Validation failed: Agent node 'x' is missing required config key 'agent_id'; Agent node 'x' is missing required config key 'task'"
    );

    exec_stop.trigger();
    exec.wait().await.unwrap();
    edge.stop().await;
    auth.stop().await;
}
