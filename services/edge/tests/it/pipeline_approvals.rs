//! Approval nodes through real edges and executors, with real users: a run waits at an
//! approval across an executor restart and is approved from a second edge; only an approver
//! may decide (403), once (409); a rejection takes the node's failure edge; a cancelled run is
//! retried over HTTP (`retry_of`) and waits again.

use std::collections::HashMap;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, eventually, start_auth, start_edge};

const PW: &str = "Approval-Pass-2024!";

async fn executor(db: &TestDb) -> (Shutdown, gathering_executor::Started) {
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", db.url.as_str()),
        ("GATHERING_ENV", "development"),
        ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
        ("EXECUTOR_QUEUES", "pipelines:4"),
        ("EXECUTOR_LEASE_SECONDS", "2"),
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

async fn status_becomes(api: &Api, token: &str, path: &str, status: &str) -> bool {
    eventually(20, || async {
        api.get(path, Some(token)).await.body["status"] == status
    })
    .await
}

fn node<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["node_id"] == id)
        .unwrap_or_else(|| panic!("no log of node {id}: {run}"))
}

#[tokio::test]
async fn a_run_waits_for_a_permitted_approver_across_executors_and_edges() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge_a = start_edge(&db, &auth, &[]).await;
    let edge_b = start_edge(&db, &auth, &[]).await;
    let (a, b) = (edge_a.api(), edge_b.api());
    let (alice, _) = a.user("alice@example.com", PW).await;
    let (bob, _) = a.user("bob@example.com", PW).await;
    let alice_id = a.get("/auth/me", Some(&alice)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = a
        .post(
            "/pipelines",
            Some(&alice),
            &json!({
                "name": "Deploy", "status": "active",
                "nodes": [
                    {"id": "t", "type": "trigger", "name": "Start"},
                    {"id": "ok", "type": "approval", "name": "OK?", "config": {
                        "message": "Deploy to {{t.env}}?", "approvers": {"user_ids": [alice_id]}}},
                    {"id": "go", "type": "parallel", "name": "Go"},
                    {"id": "undo", "type": "parallel", "name": "Undo"},
                ],
                "edges": [
                    {"from": "t", "to": "ok"}, {"from": "ok", "to": "go"},
                    {"from": "ok", "to": "undo", "condition": "on_failure"},
                ],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pid = r.body["id"].as_i64().unwrap();
    // The approval's config is validated.
    let r = a
        .post(
            "/pipelines",
            Some(&alice),
            &json!({"name": "Bad", "nodes": [
                {"id": "t", "type": "trigger"},
                {"id": "ok", "type": "approval", "config": {"approvers": {"roles": ["king"]}}}],
                "edges": [{"from": "t", "to": "ok"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    let (stop1, exec1) = executor(&db).await;
    let r = a
        .post(
            &format!("/pipelines/{pid}/run"),
            Some(&alice),
            &json!({"trigger_data": {"env": "prod"}}),
        )
        .await;
    let run_id = r.body["id"].as_i64().unwrap();
    let run_path = format!("/pipelines/{pid}/runs/{run_id}");
    assert!(status_becomes(&a, &alice, &run_path, "waiting_approval").await);
    let pending = a.get("/pipelines/approvals", Some(&alice)).await.body;
    assert_eq!(pending["total"], 1, "{pending}");
    assert_eq!(pending["approvals"][0]["message"], "Deploy to prod?");
    assert_eq!(pending["approvals"][0]["run_id"], run_id);
    assert_eq!(
        pending["approvals"][0]["context"]["trigger_data"],
        json!({"env": "prod"})
    );
    assert_eq!(
        b.get("/pipelines/approvals", Some(&bob)).await.body["total"],
        0
    );

    // The executor that parked the run goes away; another one will continue it.
    stop1.trigger();
    exec1.wait().await.unwrap();
    let (stop2, exec2) = executor(&db).await;

    let decide = |who: &str| format!("{run_path}/nodes/{who}");
    let r = b
        .post(&format!("{}/approve", decide("ok")), Some(&bob), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = b
        .post(
            &format!("{}/approve", decide("nope")),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = b
        .post(
            &format!("{}/approve", decide("ok")),
            Some(&alice),
            &json!({"comment": "go ahead", "data": {"ticket": 42}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["decided_by"], alice_id.as_str());
    assert!(r.body["decided_at"].is_string());
    let r = a
        .post(
            &format!("{}/reject", decide("ok")),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Approval already decided: approved by {alice_id}")),
        "{}",
        r.body
    );
    assert!(status_becomes(&a, &alice, &run_path, "completed").await);
    let run = a.get(&run_path, Some(&alice)).await.body;
    let ok = node(&run, "ok");
    assert_eq!(ok["output"]["ticket"], 42);
    assert_eq!(ok["output"]["approved"], true);
    assert_eq!(ok["output"]["comment"], "go ahead");
    assert_eq!(node(&run, "go")["status"], "completed");
    assert_eq!(node(&run, "undo")["status"], "skipped");

    // A rejection takes the failure edge.
    let r = a
        .post(
            &format!("/pipelines/{pid}/run"),
            Some(&alice),
            &json!({"trigger_data": {"env": "staging"}}),
        )
        .await;
    let run2 = r.body["id"].as_i64().unwrap();
    let run2_path = format!("/pipelines/{pid}/runs/{run2}");
    assert!(status_becomes(&a, &alice, &run2_path, "waiting_approval").await);
    let r = a
        .post(
            &format!("{run2_path}/nodes/ok/reject"),
            Some(&alice),
            &json!({"comment": "not today"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(status_becomes(&a, &alice, &run2_path, "completed").await);
    let run = a.get(&run2_path, Some(&alice)).await.body;
    assert_eq!(node(&run, "ok")["status"], "failed");
    assert_eq!(
        node(&run, "ok")["error"],
        format!("Approval of node 'ok' rejected by {alice_id}: not today")
    );
    assert_eq!(node(&run, "undo")["status"], "completed");
    assert_eq!(node(&run, "go")["status"], "skipped");

    // Retry over HTTP: a completed run cannot be; a cancelled one is, and waits again.
    let r = a
        .post(&format!("{run2_path}/retry"), Some(&alice), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = a
        .post(
            &format!("/pipelines/{pid}/run"),
            Some(&alice),
            &json!({"trigger_data": {"env": "dev"}}),
        )
        .await;
    let run3 = r.body["id"].as_i64().unwrap();
    let run3_path = format!("/pipelines/{pid}/runs/{run3}");
    assert!(status_becomes(&a, &alice, &run3_path, "waiting_approval").await);
    let r = a
        .post(&format!("{run3_path}/cancel"), Some(&alice), &json!({}))
        .await;
    assert_eq!(r.body["status"], "cancelled", "{}", r.body);
    let r = b
        .post(
            &format!("{run3_path}/nodes/ok/approve"),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = b
        .post(
            &format!("{run3_path}/retry"),
            Some(&alice),
            &json!({"from_node_id": "zz"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = b
        .post(&format!("{run3_path}/retry"), Some(&alice), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["retry_of"], run3);
    assert_eq!(r.body["trigger_data"], json!({"env": "dev"}));
    let run4_path = format!("/pipelines/{pid}/runs/{}", r.body["id"]);
    assert!(status_becomes(&a, &alice, &run4_path, "waiting_approval").await);
    let runs = a
        .get(
            &format!("/pipelines/{pid}/runs?status=waiting_approval"),
            Some(&alice),
        )
        .await
        .body;
    assert_eq!(runs["total"], 1, "{runs}");
    assert_eq!(runs["runs"][0]["retry_of"], run3);

    stop2.trigger();
    exec2.wait().await.unwrap();
    edge_a.stop().await;
    edge_b.stop().await;
    auth.stop().await;
}
