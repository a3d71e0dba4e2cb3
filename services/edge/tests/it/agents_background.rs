//! Agents' background tasks through the whole stack: steps with tools run by a real executor,
//! pause/resume/cancel from another edge, and the global live-task limit.

use std::time::Duration;

use gathering_testkit::fake_llm::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_runtime::stack;
use crate::support::{Api, eventually};

async fn task_status(api: &Api, token: &str, id: i64) -> String {
    api.get(&format!("/background-tasks/{id}"), Some(token))
        .await
        .body["status"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_background_task_runs_steps_with_tools_to_completion() {
    let s = stack(1).await;
    s.fake.push(Reply::tool_call(
        "build_url",
        json!({"base": "https://example.com", "path": "a"}),
    ));
    s.fake.push(Reply::tool_call(
        "build_url",
        json!({"base": "https://example.com", "path": "b"}),
    ));
    s.fake.push(Reply::text("Both URLs are built."));
    let (stop, executor) = s.executor().await;
    let api = s.api(0);
    let r = api
        .post(
            "/background-tasks",
            Some(&s.token),
            &json!({"agent_id": s.agent_id, "goal": "Build two URLs", "max_steps": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["agent_name"], "Sophie");
    assert!(
        eventually(20, || async {
            task_status(&api, &s.token, id).await == "completed"
        })
        .await,
        "completed"
    );
    let task = api
        .get(&format!("/background-tasks/{id}"), Some(&s.token))
        .await
        .body;
    assert_eq!(task["current_step"], 3);
    assert_eq!(task["progress_percent"], 100);
    assert_eq!(task["total_tool_calls"], 2);
    assert_eq!(task["total_llm_calls"], 3);
    let steps = api
        .get(&format!("/background-tasks/{id}/steps"), Some(&s.token))
        .await
        .body;
    let kinds: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "tool_call").count(), 2);
    assert_eq!(steps["steps"][0]["step_number"], 3, "newest first");
    let list = api
        .get("/background-tasks?status=completed", Some(&s.token))
        .await
        .body;
    assert_eq!(list["total"], 1);
    assert_eq!(list["counts"]["completed"], 1);
    let client = s.db.pool(1).get().await.unwrap();
    let kinds: Vec<String> = client
        .query(
            "SELECT kind FROM events.log WHERE kind LIKE 'background_task.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("background_task.created")
    );
    assert!(
        kinds.contains(&"background_task.step".to_string())
            && kinds.last().map(String::as_str) == Some("background_task.completed"),
        "{kinds:?}"
    );
    assert_eq!(
        api.send(
            api.client
                .delete(format!("{}/background-tasks/{id}", api.base))
                .bearer_auth(&s.token)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    stop.trigger();
    executor.wait().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn pause_resume_and_cancel_from_another_edge_take_effect_within_a_second() {
    let s = stack(2).await;
    // Every model call takes a while: the task is always mid-step when we act on it.
    s.fake.set_default(
        Reply::tool_call("build_url", json!({"base": "https://example.com"}))
            .delay(Duration::from_millis(400)),
    );
    let (stop, executor) = s.executor().await;
    let (a, b) = (s.api(0), s.api(1));
    let r = a
        .post(
            "/background-tasks",
            Some(&s.token),
            &json!({"agent_id": s.agent_id, "goal": "Keep going", "max_steps": 200}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    assert!(
        eventually(10, || async {
            task_status(&a, &s.token, id).await == "running"
        })
        .await
    );

    let t = std::time::Instant::now();
    assert_eq!(
        b.post(
            &format!("/background-tasks/{id}/pause"),
            Some(&s.token),
            &json!({})
        )
        .await
        .body["status"],
        "paused"
    );
    // Stopped within a second: no further model calls once the current one returned.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = s.fake.request_count();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(s.fake.request_count(), calls, "no more steps while paused");
    assert_eq!(task_status(&a, &s.token, id).await, "paused");
    println!("paused in {:?}", t.elapsed());
    let step_at_pause = a
        .get(&format!("/background-tasks/{id}"), Some(&s.token))
        .await
        .body["current_step"]
        .as_i64()
        .unwrap();

    assert_eq!(
        b.post(
            &format!("/background-tasks/{id}/resume"),
            Some(&s.token),
            &json!({})
        )
        .await
        .body["status"],
        "resumed"
    );
    assert!(
        eventually(10, || async {
            a.get(&format!("/background-tasks/{id}"), Some(&s.token))
                .await
                .body["current_step"]
                .as_i64()
                .unwrap()
                > step_at_pause
        })
        .await,
        "resumed from its checkpoint"
    );
    let bad = b
        .post(
            &format!("/background-tasks/{id}/resume"),
            Some(&s.token),
            &json!({}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    assert_eq!(
        b.post(
            &format!("/background-tasks/{id}/cancel"),
            Some(&s.token),
            &json!({})
        )
        .await
        .body["status"],
        "cancelled"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = s.fake.request_count();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        s.fake.request_count(),
        calls,
        "no more steps once cancelled"
    );
    assert_eq!(task_status(&a, &s.token, id).await, "cancelled");
    let del = b
        .send(
            b.client
                .delete(format!("{}/background-tasks/{id}", b.base))
                .bearer_auth(&s.token),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    stop.trigger();
    executor.wait().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn the_live_task_limit_is_global_and_answers_429() {
    let s = stack(2).await;
    let body = json!({"agent_id": s.agent_id, "goal": "wait"});
    // No executor: tasks stay pending, which counts as live.
    for i in 0..2 {
        let r = s
            .api(i)
            .post("/background-tasks", Some(&s.token), &body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let over = s
        .api(0)
        .post("/background-tasks", Some(&s.token), &body)
        .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.body["detail"], "Maximum concurrent tasks (2) reached");
    let bad = s
        .api(1)
        .post(
            "/background-tasks",
            Some(&s.token),
            &json!({"agent_id": s.agent_id, "goal": "x", "max_steps": 0}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = s
        .api(1)
        .post(
            "/background-tasks",
            Some(&s.token),
            &json!({"agent_id": 424242, "goal": "x"}),
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the limit is checked first"
    );
    let client = s.db.pool(1).get().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM circle.background_tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "nothing created over the limit");
    let _: Value = json!(null);
    s.stop().await;
}
