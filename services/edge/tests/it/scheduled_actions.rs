//! `/scheduled-actions` through a real edge over a fresh database: the contract's shapes,
//! validation (400 for a missing schedule field, 422 naming an unusable one, nothing written),
//! and that every change is in the table at once.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Reply, start_auth, start_edge};

async fn agent(db: &TestDb) -> i64 {
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

async fn patch(api: &Api, path: &str, body: &Value) -> Reply {
    api.send(api.client.patch(format!("{}{path}", api.base)).json(body))
        .await
}

async fn delete(api: &Api, path: &str) -> Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

async fn count(db: &TestDb, sql: &str) -> i64 {
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
async fn bad_schedules_are_refused_with_the_problem_named_and_nothing_written() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let agent = agent(&db).await;
    let base = |extra: Value| {
        let mut b = json!({"agent_id": agent, "name": "n", "goal": "g"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };

    // The contract's 400 for the field a type needs.
    for (extra, msg) in [
        (json!({}), "cron_expression required for cron schedule"),
        (
            json!({"schedule_type": "cron", "cron_expression": ""}),
            "cron_expression required for cron schedule",
        ),
        (
            json!({"schedule_type": "interval"}),
            "interval_seconds required for interval schedule",
        ),
        (
            json!({"schedule_type": "once"}),
            "next_run_at required for once schedule",
        ),
        (
            json!({"schedule_type": "event"}),
            "event_trigger required for event schedule",
        ),
    ] {
        let r = api
            .post("/scheduled-actions", None, &base(extra.clone()))
            .await;
        assert_eq!(
            (r.status, r.body["detail"].as_str()),
            (StatusCode::BAD_REQUEST, Some(msg)),
            "{extra}"
        );
    }
    // 422 naming the field and the problem.
    for (extra, field, needle) in [
        (
            json!({"cron_expression": "61 * * * *"}),
            "cron_expression",
            "minute field: 61 is out of range 0-59",
        ),
        (
            json!({"cron_expression": "* * * *"}),
            "cron_expression",
            "expected 5 fields",
        ),
        (
            json!({"cron_expression": "0 0 30 2 *"}),
            "cron_expression",
            "never matches",
        ),
        (
            json!({"cron_expression": "* * * * *", "timezone": "Europe/Pariss"}),
            "timezone",
            "unknown time zone 'Europe/Pariss'",
        ),
        (
            json!({"schedule_type": "interval", "interval_seconds": 30}),
            "interval_seconds",
            "between 60",
        ),
        (
            json!({"schedule_type": "hourly"}),
            "schedule_type",
            "unknown schedule_type",
        ),
        (
            json!({"schedule_type": "event", "event_trigger": "a b"}),
            "event_trigger",
            "event kind",
        ),
        (
            json!({"schedule_type": "once", "next_run_at": "2001-01-01T00:00:00Z"}),
            "next_run_at",
            "in the past",
        ),
        (
            json!({"cron_expression": "* * * * *", "end_date": "2001-01-01T00:00:00Z"}),
            "end_date",
            "in the past",
        ),
        (
            json!({"cron_expression": "* * * * *", "missed_run_policy": "often"}),
            "missed_run_policy",
            "skip, run_once or catch_up",
        ),
        (
            json!({"cron_expression": "* * * * *", "action_type": "launch"}),
            "action_type",
            "unknown action_type",
        ),
        (
            json!({"cron_expression": "* * * * *", "action_type": "execute_pipeline"}),
            "action_config",
            "pipeline_id required",
        ),
        (
            json!({"cron_expression": "* * * * *", "action_type": "execute_pipeline", "action_config": {"pipeline_id": 77}}),
            "action_config",
            "pipeline 77 does not exist",
        ),
        (
            json!({"cron_expression": "* * * * *", "action_type": "send_notification", "action_config": {"tool_name": "notify_sms"}}),
            "action_config",
            "not available",
        ),
        (
            json!({"cron_expression": "* * * * *", "max_steps": 0}),
            "max_steps",
            "1 to 500",
        ),
        (
            json!({"cron_expression": "* * * * *", "goal": ""}),
            "goal",
            "must not be empty",
        ),
        (
            json!({"cron_expression": "* * * * *", "name": " "}),
            "name",
            "1 to 255",
        ),
    ] {
        let r = api
            .post("/scheduled-actions", None, &base(extra.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra}: {:?}",
            r.body
        );
        let e = &r.body["detail"][0];
        assert_eq!(e["loc"], json!(["body", field]), "{extra}: {e}");
        assert!(e["msg"].as_str().unwrap().contains(needle), "{extra}: {e}");
    }
    let r = api
        .post("/scheduled-actions", None, &json!({"agent_id": agent + 100, "name": "n", "goal": "g", "cron_expression": "* * * * *"}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some(format!("Agent {} not found", agent + 100).as_str())
        )
    );
    let r = api
        .post("/scheduled-actions", None, &json!({"name": "n"}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "agent_id and goal are required"
    );
    let r = api
        .post(
            "/scheduled-actions",
            None,
            &base(json!({"cron_expression": "* * * * *", "start_date": "not a date"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(
        count(&db, "SELECT count(*) FROM circle.scheduled_actions").await,
        0,
        "nothing written"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM events.log").await, 0);

    // Valid once/event/interval schedules, with naive datetimes accepted as UTC.
    let r = api
        .post(
            "/scheduled-actions",
            None,
            &base(json!({"schedule_type": "once", "next_run_at": "2031-05-01T10:00:00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["next_run_at"], "2031-05-01T10:00:00.000000+00:00");
    let r = api
        .post("/scheduled-actions", None, &base(json!({"schedule_type": "event", "event_trigger": "pipeline_run.completed",
                                                       "metadata": {"event_filter": {"pipeline_id": 3}}})))
        .await;
    assert_eq!(
        (r.status, r.body["next_run_at"].clone()),
        (StatusCode::OK, Value::Null)
    );
    let r = api
        .post("/scheduled-actions", None, &base(json!({"cron_expression": "*/10 * * * * *", "start_date": "2031-01-01T00:00:05Z",
                                                       "end_date": "2031-01-02T00:00:00Z", "max_executions": 3})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["next_run_at"], "2031-01-01T00:00:10.000000+00:00",
        "first due time from the start date"
    );
    edge.stop().await;
    auth.stop().await;
}

/// PostgreSQL cannot store a NUL character (`\u0000`) in text or JSONB: a request carrying one
/// is answered 400 in the contract's shape, whichever route and domain crate met the refusal.
#[tokio::test]
async fn nul_characters_are_refused_with_a_400_not_a_500() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let agent = agent(&db).await;
    let nul_refused = |r: &Reply| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| d.contains("NUL")),
            "{:?}",
            r.body
        );
    };
    let base = json!({"agent_id": agent, "name": "n", "goal": "g",
                      "schedule_type": "interval", "interval_seconds": 3600});
    let mut named = base.clone();
    named["name"] = json!("a\u{0}b");
    nul_refused(&api.post("/api/scheduled-actions", None, &named).await);
    let mut meta = base.clone();
    meta["metadata"] = json!({"k": "\u{0}"});
    nul_refused(&api.post("/api/scheduled-actions", None, &meta).await);
    assert_eq!(
        count(&db, "SELECT count(*) FROM circle.scheduled_actions").await,
        0
    );

    let r = api.post("/api/scheduled-actions", None, &base).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    nul_refused(
        &patch(
            &api,
            &format!("/api/scheduled-actions/{id}"),
            &json!({"description": "x\u{0}"}),
        )
        .await,
    );
    // Through another domain crate (pipelines' store).
    nul_refused(
        &api.post("/api/pipelines", None, &json!({"name": "p\u{0}"}))
            .await,
    );
    // In the query string too.
    nul_refused(&api.get("/api/usage?team=a%00b", None).await);
    // The project and tool stores keep database errors as text: their routes refuse the
    // character before the database sees it (422 naming the field, or no such skill).
    let r = api.get("/api/projects?status=%00", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "status"]));
    let r = api.get("/api/tools/skills?category=a%00", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = patch(
        &api,
        &format!("/api/tools/agents/{agent}/skills/a%00b"),
        &json!({"is_enabled": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
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
