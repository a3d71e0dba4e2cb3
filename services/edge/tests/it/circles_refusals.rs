//! Circles refusing bad input through a real edge: the contract's error shape, and nothing
//! changed.

use reqwest::StatusCode;
use serde_json::json;

use crate::circles_stack::stack;

#[tokio::test]
async fn bad_input_is_refused_in_the_contract_shape_and_changes_nothing() {
    let s = stack(1, 0).await;
    let ann = s.agent("ann").await;
    let api = s.api(0);
    let t = s.t();
    let r = api.post("/circles", t, &json!({"name": "bad/name"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "name"]));
    let r = api
        .post(
            "/circles",
            t,
            &json!({"name": "ok", "max_concurrent_tasks": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .post(
            "/circles",
            t,
            &json!({"name": "core", "require_review": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        (r.body["id"].as_str(), r.body["status"].as_str()),
        (Some("core"), Some("stopped"))
    );
    let r = api.post("/circles", t, &json!({"name": "core"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = api
        .post("/circles/core/tasks", t, &json!({"title": "x"}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Circle must be running to create tasks")
        )
    );
    let r = api.get("/circles/nope", t).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Circle 'nope' not found"))
    );
    let long = "x".repeat(300);
    assert_eq!(
        api.get(&format!("/circles/{long}"), t).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api
        .post("/circles/core/agents?agent_id=999999", t, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let many = vec!["c"; 60]
        .iter()
        .enumerate()
        .map(|(i, _)| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let r = api
        .post(
            &format!("/circles/core/agents?agent_id={ann}&competencies={many}"),
            t,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "competencies"]));
    let r = api
        .post(
            &format!("/circles/core/agents?agent_id={ann}&competencies=rust"),
            t,
            &json!({}),
        )
        .await;
    assert_eq!(r.body, json!({"status": "added", "agent_id": ann}));
    let r = api
        .post(
            &format!("/circles/core/agents?agent_id={ann}"),
            t,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    api.post("/circles/core/start", t, &json!({})).await;

    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "ok", "priority": "urgent"}), "priority"),
        (
            json!({"title": "ok", "required_competencies": vec!["a"; 51]}),
            "required_competencies",
        ),
        (
            json!({"title": "ok", "resources": vec!["f"; 51]}),
            "resources",
        ),
        (
            json!({"title": "ok", "description": "d".repeat(20_001)}),
            "description",
        ),
    ] {
        let r = api.post("/circles/core/tasks", t, &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(r.body["detail"][0]["loc"][1], field, "{:?}", r.body);
    }
    let r = api
        .post(
            "/circles/core/tasks",
            t,
            &json!({"title": "ok", "assigned_agent_id": 424242}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.get("/circles/core/tasks", t).await.body["total"],
        0,
        "nothing was created"
    );
    let r = api
        .post(
            "/circles/core/tasks",
            t,
            &json!({"title": "ok", "priority": 99}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["priority"].as_i64()),
        (StatusCode::CREATED, Some(10))
    );
    let id = r.body["id"].as_i64().unwrap();
    let r = api.get("/circles/core/tasks?status_filter=weird", t).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .get("/circles/core/tasks?status_filter=assigned", t)
        .await;
    assert_eq!(
        (r.body["total"].as_i64(), r.body["tasks"][0]["id"].as_i64()),
        (Some(1), Some(id))
    );
    let r = api
        .post(
            &format!("/circles/core/tasks/{id}/approve?reviewer_id=me"),
            t,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not in review");
    let r = api
        .post(
            &format!("/circles/core/tasks/{id}/reject?reviewer_id=me"),
            t,
            &json!({}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason is required"
    );
    let r = api
        .post(
            &format!("/circles/core/tasks/{id}/submit"),
            t,
            &json!({"result": "r".repeat(200_001)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .post(
            &format!("/circles/core/tasks/{id}/submit"),
            t,
            &json!({"result": "done", "files_modified": ["src/a.rs"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    assert_eq!(r.body["files_modified"], json!(["src/a.rs"]));
    assert_eq!(
        api.get("/circles/core/tasks/999999", t).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api.get("/circles/core/conflicts", t).await;
    assert_eq!(r.body, json!({"total": 0, "conflicts": []}));
    let r = api
        .send(
            api.client
                .delete(format!("{}/circles/core/agents/{ann}", api.base))
                .bearer_auth(&s.token),
        )
        .await;
    assert_eq!(r.body, json!({"status": "removed", "agent_id": ann}));
    let r = api
        .send(
            api.client
                .delete(format!("{}/circles/core/agents/{ann}", api.base))
                .bearer_auth(&s.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.get("/circles", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = api
        .send(
            api.client
                .delete(format!("{}/circles/core", api.base))
                .bearer_auth(&s.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/circles/core", t).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}
