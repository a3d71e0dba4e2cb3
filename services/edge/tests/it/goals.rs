//! `/goals` through a real edge and auth: shapes and errors, the dependency graph (cycles
//! refused, blocking and unblocking), and progress rolling up a tree.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_runtime::{Stack, stack};
use crate::support::{Api, Reply};

pub async fn patch(api: &Api, path: &str, token: &str, body: &Value) -> Reply {
    api.send(
        api.client
            .patch(format!("{}{path}", api.base))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

pub async fn delete(api: &Api, path: &str, token: &str) -> Reply {
    api.send(
        api.client
            .delete(format!("{}{path}", api.base))
            .bearer_auth(token),
    )
    .await
}

/// Creates a goal; returns its id.
pub async fn goal(s: &Stack, title: &str, extra: Value) -> i64 {
    let mut body =
        json!({"agent_id": s.agent_id, "title": title, "description": format!("Do {title}")});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    let r = s.api(0).post("/goals", Some(&s.token), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

pub async fn get(s: &Stack, id: i64) -> Value {
    let r = s.api(0).get(&format!("/goals/{id}"), Some(&s.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

pub async fn post(s: &Stack, path: &str) -> Reply {
    s.api(0).post(path, Some(&s.token), &json!({})).await
}

pub async fn activity_types(s: &Stack, id: i64) -> Vec<String> {
    let r = s
        .api(0)
        .get(&format!("/goals/{id}/activities?limit=100"), Some(&s.token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut kinds: Vec<String> = r.body["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activity_type"].as_str().unwrap().to_owned())
        .collect();
    kinds.reverse(); // oldest first
    kinds
}

#[tokio::test]
async fn goals_crud_shapes_and_errors() {
    let s = stack(1).await;
    let api = s.api(0);
    let r = api
        .post(
            "/goals",
            Some(&s.token),
            &json!({"agent_id": s.agent_id, "title": "Ship v1", "description": "Release it",
                    "priority": "high", "deadline": "2030-01-01T00:00:00Z", "estimated_hours": 12.5,
                    "tags": ["release"], "context": {"repo": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let g = r.body;
    let id = g["id"].as_i64().unwrap();
    for field in [
        "id",
        "agent_id",
        "circle_id",
        "parent_id",
        "depth",
        "title",
        "description",
        "success_criteria",
        "status",
        "priority",
        "progress_percent",
        "status_message",
        "deadline",
        "estimated_hours",
        "actual_hours",
        "is_decomposed",
        "decomposition_strategy",
        "background_task_id",
        "attempts",
        "max_attempts",
        "result_summary",
        "artifacts",
        "tags",
        "created_at",
        "started_at",
        "completed_at",
        "agent_name",
        "subgoal_count",
        "completed_subgoals",
        "blocking_count",
    ] {
        assert!(g.get(field).is_some(), "missing {field}: {g}");
    }
    assert_eq!(
        (&g["status"], &g["priority"], &g["agent_name"], &g["depth"]),
        (
            &json!("pending"),
            &json!("high"),
            &json!("Sophie"),
            &json!(0)
        )
    );
    assert_eq!(g["estimated_hours"], 12.5);
    assert_eq!(g["tags"], json!(["release"]));

    // Lists: filters, counts per status, total of the filter.
    let other = goal(&s, "Other", json!({"priority": "low"})).await;
    let r = post(&s, &format!("/goals/{other}/start")).await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["attempts"], 1);
    let list = api.get("/goals?status=pending", Some(&s.token)).await.body;
    assert_eq!(list["total"], 1);
    assert_eq!(list["goals"][0]["id"], id);
    assert_eq!(list["counts"], json!({"pending": 1, "active": 1}));
    let list = api.get("/goals?limit=1", Some(&s.token)).await.body;
    assert_eq!(
        (
            list["total"].as_i64(),
            list["goals"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(list["goals"][0]["id"], id, "high priority first");

    // PATCH: fields and a status change through the lifecycle rules.
    let r = patch(
        &api,
        &format!("/goals/{id}"),
        &s.token,
        &json!({"title": "Ship v1.0", "progress_percent": 30}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["title"], &r.body["progress_percent"]),
        (&json!("Ship v1.0"), &json!(30))
    );
    let r = patch(
        &api,
        &format!("/goals/{id}"),
        &s.token,
        &json!({"status": "blocked"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // Errors in the contract's shapes; nothing changes.
    let r = api.get("/goals/999999", Some(&s.token)).await;
    assert_eq!(
        (r.status, &r.body["detail"]),
        (StatusCode::NOT_FOUND, &json!("Goal not found"))
    );
    let r = api
        .post(
            "/goals",
            Some(&s.token),
            &json!({"agent_id": s.agent_id, "title": "x", "description": "y", "parent_id": 999999}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = api
        .post(
            "/goals",
            Some(&s.token),
            &json!({"agent_id": 999999, "title": "x", "description": "y"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = api
        .post("/goals", Some(&s.token), &json!({"agent_id": s.agent_id, "title": "x".repeat(256), "description": "y", "priority": "urgent"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let locs: Vec<&Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"][1])
        .collect();
    assert!(
        locs.contains(&&json!("title")) && locs.contains(&&json!("priority")),
        "{locs:?}"
    );
    let r = api.get("/goals?limit=0", Some(&s.token)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api.get("/goals?status=weird", Some(&s.token)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .post(&format!("/goals/{id}/progress"), Some(&s.token), &json!({}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "percent is required"
    );
    let r = api
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({"max_subgoals": 11}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api.get("/goals", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Lifecycle refusals.
    let r = post(&s, &format!("/goals/{other}/start")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "already active");
    let r = delete(&api, &format!("/goals/{other}"), &s.token).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "active goals are not deleted"
    );
    let r = post(&s, &format!("/goals/{other}/pause?reason=later")).await;
    assert_eq!(
        (&r.body["status"], &r.body["status_message"]),
        (&json!("paused"), &json!("later"))
    );
    let r = post(&s, &format!("/goals/{other}/resume")).await;
    assert_eq!(r.body["status"], "active");
    let r = post(
        &s,
        &format!("/goals/{other}/progress?percent=140&message=almost"),
    )
    .await;
    assert_eq!(r.body["progress_percent"], 100, "clamped");
    let r = post(
        &s,
        &format!("/goals/{other}/fail?reason=no%20time&lessons_learned=plan"),
    )
    .await;
    assert_eq!(
        (&r.body["status"], &r.body["status_message"]),
        (&json!("failed"), &json!("no time"))
    );
    let r = post(&s, &format!("/goals/{other}/complete")).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a failed goal does not complete"
    );
    let r = post(&s, &format!("/goals/{id}/complete?result_summary=shipped")).await;
    assert_eq!(
        (
            &r.body["status"],
            &r.body["progress_percent"],
            &r.body["result_summary"]
        ),
        (&json!("completed"), &json!(100), &json!("shipped"))
    );
    assert_eq!(
        activity_types(&s, other).await,
        [
            "created", "started", "paused", "resumed", "progress", "failed"
        ]
    );
    let acts = api
        .get(
            &format!("/goals/{other}/activities?limit=1"),
            Some(&s.token),
        )
        .await
        .body;
    let a = &acts["activities"][0];
    assert_eq!(
        (
            &a["activity_type"],
            &a["actor_type"],
            &a["old_value"],
            &a["new_value"]
        ),
        (
            &json!("failed"),
            &json!("user"),
            &json!("active"),
            &json!("failed")
        )
    );

    let r = delete(&api, &format!("/goals/{other}"), &s.token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/goals/{other}"), Some(&s.token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/api/goals", Some(&s.token)).await.body["total"],
        1,
        "also under /api"
    );
    // Goal changes reach /ws as events.
    let client = s.db.pool(1).get().await.unwrap();
    let kinds: Vec<String> = client
        .query(
            "SELECT DISTINCT kind FROM events.log WHERE kind LIKE 'goal.%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for k in [
        "goal.created",
        "goal.started",
        "goal.completed",
        "goal.failed",
        "goal.deleted",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn dependency_cycles_are_refused_and_blockers_unblock() {
    let s = stack(1).await;
    let api = s.api(0);
    let (a, b, c) = (
        goal(&s, "A", json!({})).await,
        goal(&s, "B", json!({})).await,
        goal(&s, "C", json!({})).await,
    );
    let dep = |from: i64, to: i64| {
        let api = api.clone();
        let token = s.token.clone();
        async move {
            api.post(
                &format!("/goals/{from}/dependencies"),
                Some(&token),
                &json!({"depends_on_id": to}),
            )
            .await
        }
    };
    // B depends on A, C depends on B.
    let r = dep(b, a).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"goal_id": b, "depends_on_id": a, "dependency_type": "blocks"})
    );
    assert_eq!(dep(c, b).await.status, StatusCode::OK);
    // A depending on C would close the cycle A → C → B → A.
    let r = dep(a, c).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("cycle"),
        "{:?}",
        r.body
    );
    assert_eq!(dep(a, a).await.status, StatusCode::BAD_REQUEST, "self");
    assert_eq!(dep(a, 999_999).await.status, StatusCode::NOT_FOUND);
    assert_eq!(dep(b, a).await.status, StatusCode::BAD_REQUEST, "duplicate");
    let r = api
        .post(
            &format!("/goals/{a}/dependencies"),
            Some(&s.token),
            &json!({"depends_on_id": b, "dependency_type": "needs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let deps = api
        .get(&format!("/goals/{a}/dependencies"), Some(&s.token))
        .await
        .body;
    assert_eq!(deps["dependencies"], json!([]), "nothing was added");

    // B and C wait for their blockers.
    let (gb, gc) = (get(&s, b).await, get(&s, c).await);
    assert_eq!(
        (&gb["status"], &gb["blocking_count"]),
        (&json!("blocked"), &json!(1))
    );
    assert_eq!(gc["status"], "blocked");
    let r = post(&s, &format!("/goals/{b}/start")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["detail"], "Goal is blocked by dependencies");
    let dependents = api
        .get(&format!("/goals/{a}/dependents"), Some(&s.token))
        .await
        .body;
    assert_eq!(dependents["dependents"][0]["id"], b);

    // Completing A unblocks B (not C, still waiting for B).
    assert_eq!(
        post(&s, &format!("/goals/{a}/start")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&s, &format!("/goals/{a}/complete")).await.status,
        StatusCode::OK
    );
    let (gb, gc) = (get(&s, b).await, get(&s, c).await);
    assert_eq!(
        (&gb["status"], &gb["blocking_count"]),
        (&json!("pending"), &json!(0))
    );
    assert_eq!(gc["status"], "blocked");
    assert_eq!(
        activity_types(&s, b).await,
        ["created", "dependency_added", "blocked", "unblocked"]
    );
    let client = s.db.pool(1).get().await.unwrap();
    let unblocked: i64 = client
        .query_one("SELECT count(*) FROM events.log WHERE kind = 'goal.unblocked' AND payload->>'goal_id' = $1", &[&b.to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unblocked, 1);
    assert_eq!(
        post(&s, &format!("/goals/{b}/start")).await.body["status"],
        "active"
    );

    // Removing C's dependency unblocks it; removing it again is a 404.
    assert_eq!(
        delete(&api, &format!("/goals/{c}/dependencies/{b}"), &s.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(&s, c).await["status"], "pending");
    assert_eq!(
        delete(&api, &format!("/goals/{c}/dependencies/{b}"), &s.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A blocking edge onto an active goal is refused (it would stop running work).
    let r = dep(b, c).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn progress_rolls_up_and_parents_complete_with_their_subgoals() {
    let s = stack(1).await;
    let root = goal(&s, "Root", json!({})).await;
    let parent = goal(&s, "Parent", json!({"parent_id": root})).await;
    let (x, y) = (
        goal(&s, "X", json!({"parent_id": parent})).await,
        goal(&s, "Y", json!({"parent_id": parent})).await,
    );
    let p = get(&s, parent).await;
    assert_eq!(
        (&p["is_decomposed"], &p["subgoal_count"], &p["depth"]),
        (&json!(true), &json!(2), &json!(1))
    );
    assert_eq!(get(&s, x).await["depth"], 2);

    assert_eq!(
        post(&s, &format!("/goals/{x}/progress?percent=50"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(get(&s, parent).await["progress_percent"], 25);
    assert_eq!(
        get(&s, root).await["progress_percent"],
        25,
        "rolled up to the root"
    );
    let r = post(&s, &format!("/goals/{parent}/progress?percent=90")).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a decomposed goal's progress follows its subgoals"
    );
    let r = post(&s, &format!("/goals/{parent}/complete")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "subgoals are not done");

    assert_eq!(
        post(&s, &format!("/goals/{x}/complete")).await.status,
        StatusCode::OK
    );
    let p = get(&s, parent).await;
    assert_eq!(
        (&p["progress_percent"], &p["completed_subgoals"]),
        (&json!(50), &json!(1))
    );
    assert_eq!(
        post(&s, &format!("/goals/{y}/complete")).await.status,
        StatusCode::OK
    );
    let (p, r) = (get(&s, parent).await, get(&s, root).await);
    assert_eq!(
        (&p["status"], &p["progress_percent"]),
        (&json!("completed"), &json!(100))
    );
    assert_eq!(
        (&r["status"], &r["progress_percent"]),
        (&json!("completed"), &json!(100)),
        "the root completes too"
    );
    let kinds = activity_types(&s, parent).await;
    assert_eq!(kinds.last().map(String::as_str), Some("completed"));
    let tree = s
        .api(0)
        .get(&format!("/goals/{root}/tree"), Some(&s.token))
        .await
        .body;
    assert_eq!(tree["subgoals"][0]["id"], parent);
    assert_eq!(tree["subgoals"][0]["subgoals"].as_array().unwrap().len(), 2);
    let subs = s
        .api(0)
        .get(&format!("/goals/{parent}/subgoals"), Some(&s.token))
        .await
        .body;
    assert_eq!(
        (
            subs["goal_id"].as_i64(),
            subs["subgoals"].as_array().unwrap().len()
        ),
        (Some(parent), 2)
    );

    // Completion on request: the parent waits at 100 % until asked.
    let manual = goal(&s, "Manual", json!({"auto_complete": false})).await;
    let only = goal(&s, "Only", json!({"parent_id": manual})).await;
    assert_eq!(
        post(&s, &format!("/goals/{only}/complete")).await.status,
        StatusCode::OK
    );
    let m = get(&s, manual).await;
    assert_eq!(
        (&m["status"], &m["progress_percent"]),
        (&json!("pending"), &json!(100))
    );
    assert_eq!(
        post(&s, &format!("/goals/{manual}/complete")).await.body["status"],
        "completed"
    );
    // Deleting the last subgoal makes the goal whole again.
    let solo = goal(&s, "Solo", json!({})).await;
    let gone = goal(&s, "Gone", json!({"parent_id": solo})).await;
    assert_eq!(get(&s, solo).await["is_decomposed"], true);
    let r = delete(&s.api(0), &format!("/goals/{gone}"), &s.token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let g = get(&s, solo).await;
    assert_eq!(
        (&g["is_decomposed"], &g["subgoal_count"]),
        (&json!(false), &json!(0))
    );
    assert_eq!(
        post(&s, &format!("/goals/{solo}/progress?percent=20"))
            .await
            .body["progress_percent"],
        20
    );
    // Subgoals of a finished goal are refused.
    let r = s.api(0)
        .post("/goals", Some(&s.token), &json!({"agent_id": s.agent_id, "title": "late", "description": "x", "parent_id": manual}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    s.stop().await;
}
