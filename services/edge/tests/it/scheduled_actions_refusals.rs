//! Scheduled actions refused through a real edge: each bad schedule gets a 4xx naming its
//! problem and writes nothing; NUL characters are a 400, not a 500.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Reply, start_auth, start_edge};

use crate::scheduled_actions::{agent, count, patch};

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
