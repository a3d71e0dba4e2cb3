//! Goals planned and executed by their agent: decomposition through the gateway and a fake
//! provider (valid, invalid-then-valid, always invalid), and execution as a background task on
//! a real executor, applied to the goal exactly once.

use gathering_testkit::fake_llm::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_runtime::stack;
use crate::goals::{activity_types, get, goal, post};
use crate::support::eventually;

fn plan() -> String {
    json!({
        "strategy": "research, then build, then test",
        "subgoals": [
            {"title": "Research", "description": "Read the docs", "priority": "high", "estimated_hours": 2},
            {"title": "Build", "description": "Write the code", "priority": "medium", "estimated_hours": 5, "depends_on": [1]},
            {"title": "Test", "description": "Run the tests", "priority": "medium", "estimated_hours": 1.5, "depends_on": [2]}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn decomposition_creates_planned_subgoals_with_their_dependencies() {
    let s = stack(1).await;
    let id = goal(
        &s,
        "Ship the feature",
        json!({"success_criteria": "tests pass"}),
    )
    .await;
    s.fake.push(Reply::text(format!(
        "Here is the plan:\n```json\n{}\n```",
        plan()
    )));
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({"max_subgoals": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["goal_id"], &r.body["subgoal_count"]),
        (&json!(id), &json!(3))
    );
    let subs = r.body["subgoals"].as_array().unwrap();
    let titles: Vec<&str> = subs.iter().map(|g| g["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Research", "Build", "Test"]);
    assert_eq!(
        subs.iter()
            .map(|g| g["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["pending", "blocked", "blocked"]
    );
    assert_eq!(subs[0]["priority"], "high");
    assert_eq!(subs[1]["estimated_hours"].as_f64(), Some(5.0));
    assert_eq!(
        (&subs[0]["parent_id"], &subs[0]["agent_id"]),
        (&json!(id), &json!(s.agent_id))
    );
    let parent = get(&s, id).await;
    assert_eq!(
        (&parent["is_decomposed"], &parent["decomposition_strategy"]),
        (&json!(true), &json!("llm"))
    );
    let acts = s
        .api(0)
        .get(&format!("/goals/{id}/activities"), Some(&s.token))
        .await
        .body;
    let decomposed = acts["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["activity_type"] == "decomposed")
        .expect("decomposed activity");
    assert!(
        decomposed["tokens_used"].as_i64().unwrap() > 0,
        "{decomposed}"
    );
    let build = subs[1]["id"].as_i64().unwrap();
    let deps = s
        .api(0)
        .get(&format!("/goals/{build}/dependencies"), Some(&s.token))
        .await
        .body;
    assert_eq!(deps["dependencies"][0]["id"], subs[0]["id"]);

    // The model got the goal, the schema, and the persona; no tools.
    let sent = &s.fake.requests()[0].body;
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("Tu es Sophie") && system.contains("\"maxItems\":3"),
        "{system}"
    );
    let user = sent["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("Ship the feature") && user.contains("tests pass"),
        "{user}"
    );
    assert!(
        sent.get("tools")
            .is_none_or(|t| t.as_array().is_none_or(|a| a.is_empty()))
    );

    // Once decomposed, not again.
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["detail"], "Goal is already decomposed");
    s.stop().await;
}

#[tokio::test]
async fn decomposition_retries_once_after_an_invalid_answer() {
    let s = stack(1).await;
    let id = goal(&s, "Write a guide", json!({})).await;
    // Six subgoals (over max_subgoals = 2) and a made-up priority: invalid.
    s.fake.push(Reply::text(
        json!({"subgoals": [{"title": "a", "description": "", "priority": "urgent", "estimated_hours": 1}]}).to_string(),
    ));
    s.fake.push(Reply::text(
        json!({"subgoals": [
            {"title": "Outline", "description": "", "priority": "low", "estimated_hours": 1},
            {"title": "Draft", "description": "", "priority": "low", "estimated_hours": 3, "depends_on": [1]}
        ]})
        .to_string(),
    ));
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({"max_subgoals": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["subgoal_count"], 2);
    let requests = s.fake.requests();
    assert_eq!(requests.len(), 2);
    let retry = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        retry.len(),
        4,
        "the invalid answer and the reasons went back"
    );
    assert_eq!(retry[2]["role"], "assistant");
    let why = retry[3]["content"].as_str().unwrap();
    assert!(why.contains("urgent"), "{why}");
    s.stop().await;
}

#[tokio::test]
async fn decomposition_fails_with_502_after_two_invalid_answers() {
    let s = stack(1).await;
    let id = goal(&s, "Impossible", json!({})).await;
    s.fake.push(Reply::text("I would rather not."));
    // A cycle between subgoals is not a plan either.
    s.fake.push(Reply::text(
        json!({"subgoals": [
            {"title": "a", "description": "", "priority": "low", "estimated_hours": 1, "depends_on": [2]},
            {"title": "b", "description": "", "priority": "low", "estimated_hours": 1, "depends_on": [1]}
        ]})
        .to_string(),
    ));
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("cycle"),
        "{:?}",
        r.body
    );
    assert_eq!(s.fake.request_count(), 2, "one retry, no more");
    let g = get(&s, id).await;
    assert_eq!(
        (&g["is_decomposed"], &g["subgoal_count"]),
        (&json!(false), &json!(0))
    );
    assert_eq!(
        activity_types(&s, id).await,
        ["created", "decomposition_failed"]
    );
    // A goal whose agent is gone cannot be decomposed.
    let client = s.db.pool(1).get().await.unwrap();
    client
        .execute(
            "UPDATE agent.agents SET is_active = false WHERE id = $1",
            &[&s.agent_id],
        )
        .await
        .unwrap();
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/decompose"),
            Some(&s.token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    s.stop().await;
}

async fn wait_status(s: &crate::agents_runtime::Stack, id: i64, status: &str) -> Value {
    for _ in 0..1500 {
        let g = get(s, id).await;
        if g["status"] == status {
            return g;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("goal {id} never became {status}: {}", get(s, id).await);
}

#[tokio::test]
async fn a_goal_executes_as_a_background_task_and_completes_once() {
    let s = stack(1).await;
    let (stop, executor) = s.executor().await;
    let id = goal(&s, "Summarise the release", json!({"max_attempts": 2})).await;
    s.fake.push(Reply::text("The release adds goals."));
    let r = s
        .api(0)
        .post(
            &format!("/goals/{id}/start?execute=true&max_steps=5"),
            Some(&s.token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["status"], &r.body["attempts"]),
        (&json!("active"), &json!(1))
    );
    let task = r.body["background_task_id"]
        .as_i64()
        .expect("a background task");
    let g = wait_status(&s, id, "completed").await;
    assert_eq!(g["result_summary"], "The release adds goals.");
    assert_eq!(
        g["artifacts"][0],
        json!({"type": "background_task", "task_id": task})
    );
    assert_eq!(g["progress_percent"], 100);
    let t = s
        .api(0)
        .get(&format!("/background-tasks/{task}"), Some(&s.token))
        .await
        .body;
    assert_eq!(t["status"], "completed");
    assert!(
        t["goal"]
            .as_str()
            .unwrap()
            .contains("Summarise the release")
    );
    assert_eq!(
        activity_types(&s, id).await,
        ["created", "started", "completed"]
    );

    // The task's job run again (a retry after a crash, a duplicate): the goal changes no more.
    let client = s.db.pool(1).get().await.unwrap();
    let job = gathering_queue::enqueue_in(
        &client,
        &gathering_queue::NewJob::new("background_task.run", json!({"task_id": task}))
            .queue("agents"),
    )
    .await
    .unwrap()
    .id;
    let done = eventually(20, || async {
        let state: String = client
            .query_one("SELECT state::text FROM queue.jobs WHERE id = $1", &[&job])
            .await
            .unwrap()
            .get(0);
        state == "completed"
    })
    .await;
    assert!(done, "the duplicate job ran");
    assert_eq!(
        activity_types(&s, id).await,
        ["created", "started", "completed"]
    );
    let completions: i64 = client
        .query_one("SELECT count(*) FROM events.log WHERE kind = 'goal.completed' AND payload->>'goal_id' = $1", &[&id.to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(completions, 1);
    assert_eq!(get(&s, id).await["attempts"], 1);
    stop.trigger();
    executor.wait().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_failed_attempt_returns_the_goal_to_pending_until_attempts_run_out() {
    let s = stack(1).await;
    let (stop, executor) = s.executor().await;
    let id = goal(&s, "Fetch things", json!({"max_attempts": 2})).await;
    // Every answer calls a tool: with max_steps = 1 the task fails after its one step.
    s.fake.set_default(Reply::tool_call(
        "build_url",
        json!({"base": "https://example.com"}),
    ));
    let start = format!("/goals/{id}/start?execute=true&max_steps=1");
    assert_eq!(post(&s, &start).await.status, StatusCode::OK);
    let g = wait_status(&s, id, "pending").await;
    assert_eq!(g["attempts"], 1);
    assert!(
        g["status_message"]
            .as_str()
            .unwrap()
            .starts_with("Attempt 1/2 failed"),
        "{g}"
    );
    assert_eq!(post(&s, &start).await.status, StatusCode::OK);
    let g = wait_status(&s, id, "failed").await;
    assert_eq!(g["attempts"], 2);
    let r = post(&s, &start).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let kinds = activity_types(&s, id).await;
    assert_eq!(
        kinds,
        ["created", "started", "attempt_failed", "started", "failed"]
    );
    stop.trigger();
    executor.wait().await.unwrap();
    s.stop().await;
}
