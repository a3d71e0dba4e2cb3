//! `/scheduled-actions` through a real edge over a fresh database: the contract's shapes,
//! validation (400 for a missing schedule field, 422 naming an unusable one, nothing written),
//! and that every change is in the table at once.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Reply, start_auth, start_edge};

pub(crate) async fn agent(db: &TestDb) -> i64 {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('planner') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

pub(crate) async fn patch(api: &Api, path: &str, body: &Value) -> Reply {
    api.send(api.client.patch(format!("{}{path}", api.base)).json(body))
        .await
}

async fn delete(api: &Api, path: &str) -> Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

pub(crate) async fn count(db: &TestDb, sql: &str) -> i64 {
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
async fn schedules_crud_pause_resume_trigger_and_runs_in_the_contract_shapes() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let agent = agent(&db).await;

    let r = api
        .post(
            "/api/scheduled-actions",
            None,
            &json!({"agent_id": agent, "name": "Morning report", "goal": "Summarise the news",
                    "schedule_type": "cron", "cron_expression": "0 9 * * 1-5",
                    "timezone": "Europe/Paris", "tags": ["daily"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "create is 200: {:?}", r.body);
    let a = &r.body;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(a["status"], "active");
    assert_eq!(a["agent_name"], "planner");
    assert_eq!(a["schedule_type"], "cron");
    assert_eq!(a["timezone"], "Europe/Paris");
    assert_eq!(
        (a["max_steps"].as_i64(), a["timeout_seconds"].as_i64()),
        (Some(50), Some(3600))
    );
    assert_eq!(
        (a["retry_on_failure"].as_bool(), a["max_retries"].as_i64()),
        (Some(true), Some(3))
    );
    assert_eq!(
        (
            a["retry_delay_seconds"].as_i64(),
            a["allow_concurrent"].as_bool()
        ),
        (Some(300), Some(false))
    );
    assert_eq!(
        (a["execution_count"].as_i64(), a["successful_runs"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(a["tags"], json!(["daily"]));
    // 09:00 Paris is 07:00 or 08:00 UTC, on a weekday.
    let next = a["next_run_at"].as_str().unwrap();
    assert!(next.ends_with("+00:00"), "{next}");
    assert!(
        next.contains("T07:00:00") || next.contains("T08:00:00"),
        "{next}"
    );
    for key in [
        "id",
        "agent_id",
        "circle_id",
        "name",
        "description",
        "goal",
        "cron_expression",
        "interval_seconds",
        "event_trigger",
        "start_date",
        "end_date",
        "max_executions",
        "last_run_at",
        "created_at",
        "circle_name",
        "last_run_status",
        "last_run_duration",
        "failed_runs",
    ] {
        assert!(a.get(key).is_some(), "Action lacks {key}");
    }

    // A second one, newer: lists are bare arrays, newest first.
    let r = api
        .post(
            "/scheduled-actions",
            None,
            &json!({"agent_id": agent, "name": "Poll", "goal": "g", "schedule_type": "interval",
                    "interval_seconds": 120, "action_type": "call_api",
                    "action_config": {"tool_name": "http_get",
                                      "tool_input": {"url": "https://example.com/",
                                                     "headers": {"Authorization": "Bearer s3cret"}}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let poll = r.body["id"].as_i64().unwrap();
    assert!(
        !r.body.to_string().contains("s3cret"),
        "secrets in action_config are not returned"
    );
    let r = api.get("/scheduled-actions", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<i64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![poll, id]);
    let r = api.get("/scheduled-actions?status=paused", None).await;
    assert_eq!(r.body, json!([]));
    let r = api
        .get(&format!("/scheduled-actions?agent_id={}", agent + 1), None)
        .await;
    assert_eq!(r.body, json!([]));
    let r = api.get("/scheduled-actions?status=sleeping", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Get; 404.
    let r = api.get(&format!("/scheduled-actions/{id}"), None).await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("Morning report"))
    );
    let r = api.get("/scheduled-actions/999999", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["detail"].as_str().unwrap().contains("not found"));

    // PATCH returns the updated schedule; a new cron starts over from now.
    let r = patch(&api, &format!("/scheduled-actions/{id}"), &json!({})).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::BAD_REQUEST, Some("No updates provided"))
    );
    let r = patch(
        &api,
        &format!("/scheduled-actions/{id}"),
        &json!({"name": "Evening report", "cron_expression": "30 18 * * *", "timezone": "UTC",
                "max_executions": 10, "tags": ["evening"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "Evening report");
    assert_eq!(r.body["cron_expression"], "30 18 * * *");
    assert_eq!(r.body["max_executions"], 10);
    assert!(
        r.body["next_run_at"]
            .as_str()
            .unwrap()
            .contains("T18:30:00")
    );
    let r = patch(
        &api,
        &format!("/scheduled-actions/{id}"),
        &json!({"interval_seconds": 90}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "interval on a cron schedule"
    );
    let r = patch(
        &api,
        &format!("/scheduled-actions/{id}"),
        &json!({"cron_expression": "* * *"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "cron_expression"])
    );
    let r = patch(&api, "/scheduled-actions/999999", &json!({"name": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Pause / resume, each only from the other state.
    let r = api
        .post(&format!("/scheduled-actions/{id}/pause"), None, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"status": "paused", "action_id": id}))
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM circle.scheduled_actions WHERE status = 'paused'"
        )
        .await,
        1,
        "in the table at once"
    );
    let r = api
        .post(&format!("/scheduled-actions/{id}/pause"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["detail"].as_str().unwrap().contains("not active"));
    let r = api
        .post(&format!("/scheduled-actions/{id}/resume"), None, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"status": "active", "action_id": id}))
    );
    let r = api
        .post(&format!("/scheduled-actions/{id}/resume"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["detail"].as_str().unwrap().contains("not paused"));

    // Trigger really runs: a manual run and its dispatch job, now.
    let r = api
        .post(
            &format!("/scheduled-actions/{id}/trigger"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            StatusCode::OK,
            json!({"status": "triggered", "action_id": id})
        )
    );
    let r = api
        .post("/scheduled-actions/999999/trigger", None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        count(&db, "SELECT count(*) FROM queue.jobs WHERE kind = 'scheduled_action.dispatch' AND queue = 'scheduled'").await,
        1
    );
    let r = api
        .get(&format!("/scheduled-actions/{id}/runs"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let runs = r.body.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run["triggered_by"].as_str(), run["status"].as_str()),
        (Some("manual"), Some("pending"))
    );
    assert_eq!(
        (
            run["run_number"].as_i64(),
            run["scheduled_action_id"].as_i64()
        ),
        (Some(1), Some(id))
    );
    for key in [
        "id",
        "background_task_id",
        "triggered_at",
        "started_at",
        "completed_at",
        "result_summary",
        "error_message",
        "retry_count",
        "duration_ms",
        "steps_executed",
    ] {
        assert!(run.get(key).is_some(), "Run lacks {key}");
    }
    let r = api.get(&format!("/scheduled-actions/{id}"), None).await;
    assert_eq!(r.body["execution_count"], 1);
    assert_eq!(r.body["last_run_status"], "pending");
    for q in ["limit=0", "limit=101", "offset=-1", "limit=abc"] {
        let r = api
            .get(&format!("/scheduled-actions/{id}/runs?{q}"), None)
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    }
    let r = api
        .get(
            &format!("/scheduled-actions/{id}/runs?limit=1&offset=1"),
            None,
        )
        .await;
    assert_eq!(r.body, json!([]));
    let r = api.get("/scheduled-actions/999999/runs", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // An expired schedule given a new timing runs again.
    db.pool(1)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE circle.scheduled_actions SET status = 'expired', next_run_at = NULL WHERE id = $1",
            &[&poll],
        )
        .await
        .unwrap();
    let r = patch(
        &api,
        &format!("/scheduled-actions/{poll}"),
        &json!({"interval_seconds": 300}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "active");
    assert!(r.body["next_run_at"].is_string());

    // Delete: 200 with a body; runs go with it.
    let r = delete(&api, &format!("/scheduled-actions/{id}")).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            StatusCode::OK,
            json!({"status": "deleted", "action_id": id})
        )
    );
    let r = delete(&api, &format!("/scheduled-actions/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        count(&db, "SELECT count(*) FROM circle.scheduled_action_runs").await,
        0
    );

    let kinds: Vec<String> = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query(
            "SELECT kind FROM events.log WHERE kind LIKE 'scheduled_action.%' AND (payload->>'action_id')::int8 = $1 ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "updated",
            "paused",
            "resumed",
            "triggered",
            "deleted"
        ]
        .map(|k| format!("scheduled_action.{k}"))
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn scheduled_actions_need_a_token() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let r = api.get("/scheduled-actions", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (token, _) = api.user("sched@example.com", "a-long-password-1").await;
    let r = api.get("/scheduled-actions", Some(&token)).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!([])));
    edge.stop().await;
    auth.stop().await;
}
