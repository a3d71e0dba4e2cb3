//! Circles through the whole stack: edges → PostgreSQL → executors → gateway → fake OpenAI.
//! A task is routed, done by its assignee on an executor, reviewed by another member through
//! a structured verdict, sent back with comments, escalated; two edges and two executors do
//! each task and each review once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gathering_testkit::fake_llm::Reply;
use reqwest::StatusCode;
use serde_json::json;

use crate::circles_stack::{
    default_reply, is_review, review_task, speaker, stack, user, verdict, work_task,
};

#[tokio::test]
async fn a_task_is_done_on_an_executor_and_reviewed_by_another_member() {
    let s = stack(1, 1).await;
    let ann = s.agent("ann").await;
    let bob = s.agent("bob").await;
    s.circle(
        "core",
        json!({}),
        &[(ann, "rust", "quality"), (bob, "docs", "quality")],
    )
    .await;
    let api = s.api(0);
    let r = api
        .post(
            "/circles/core/tasks",
            s.t(),
            &json!({"title": "Parser", "description": "Parse the config", "required_competencies": ["rust"], "priority": "high"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        (
            r.body["assigned_agent_id"].as_i64(),
            r.body["priority"].as_i64()
        ),
        (Some(ann), Some(3))
    );
    let id = r.body["id"].as_i64().unwrap();

    let task = s.task_until("core", id, "completed", 30).await;
    assert_eq!(task["result"], "Parser done by ann");
    assert_eq!(
        (task["reviewer_id"].as_i64(), task["reviewer_name"].as_str()),
        (Some(bob), Some("bob"))
    );
    assert_eq!(task["quality_score"], 0.8);

    let requests = s.fake.requests();
    let work: Vec<_> = requests
        .iter()
        .filter(|r| work_task(&r.body) == Some(id))
        .collect();
    assert_eq!(work.len(), 1, "done once");
    assert_eq!(
        speaker(&work[0].body),
        "ann",
        "by its assignee, with its persona"
    );
    assert!(user(&work[0].body).contains("Parse the config"));
    let reviews: Vec<_> = requests
        .iter()
        .filter(|r| review_task(&r.body) == Some(id))
        .collect();
    assert_eq!(reviews.len(), 1, "reviewed once");
    assert_eq!(speaker(&reviews[0].body), "bob", "by another member");
    assert!(
        user(&reviews[0].body).contains("Parser done by ann"),
        "the reviewer sees the result"
    );
    assert!(
        reviews[0]
            .body
            .get("tools")
            .is_none_or(|t| t.as_array().is_none_or(|a| a.is_empty()))
    );

    assert_eq!(
        s.task_events(id).await,
        vec![
            "task.created",
            "task.assigned",
            "task.started",
            "task.review_requested",
            "task.review_approved",
            "task.completed"
        ]
    );
    let m = api.get("/circles/core/metrics", s.t()).await.body;
    let ann_m = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == ann)
        .unwrap()
        .clone();
    assert_eq!(
        (
            ann_m["tasks_completed"].as_i64(),
            ann_m["approval_rate"].as_f64()
        ),
        (Some(1), Some(1.0))
    );
    assert_eq!(ann_m["average_quality_score"], 80.0);
    assert_eq!(
        (m["total_tasks"].as_i64(), m["completed_tasks"].as_i64()),
        (Some(1), Some(1))
    );
    let detail = api.get("/circles/core", s.t()).await.body;
    assert_eq!(
        (
            detail["completed_tasks"].as_i64(),
            detail["agent_count"].as_i64()
        ),
        (Some(1), Some(2))
    );
    let list = api.get("/api/circles", s.t()).await.body;
    assert_eq!(
        (list["total"].as_i64(), list["circles"][0]["id"].as_str()),
        (Some(1), Some("core"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_rejected_task_goes_back_with_the_comments_and_escalates_after_the_bound() {
    let s = stack(1, 1).await;
    let ann = s.agent("ann").await;
    let bob = s.agent("bob").await;
    s.circle(
        "core",
        json!({"max_review_rounds": 2}),
        &[(ann, "rust", ""), (bob, "", "all")],
    )
    .await;
    let reviews = Arc::new(AtomicUsize::new(0));
    let seen = reviews.clone();
    s.fake.respond_with(move |body| {
        if !is_review(body) {
            return default_reply(body);
        }
        // 1: prose (invalid, asked again), 2: changes requested, 3: changes requested again.
        Some(match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::text("Looks fine overall, I think."),
            _ => verdict(false, "handle the empty input"),
        })
    });
    let r = s
        .api(0)
        .post(
            "/circles/core/tasks",
            s.t(),
            &json!({"title": "Parser", "required_competencies": ["rust"]}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let task = s.task_until("core", id, "failed", 40).await;
    assert_eq!(task["status_reason"], "escalated");
    assert_eq!(
        (task["iteration"].as_i64(), task["review_rounds"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        reviews.load(Ordering::SeqCst),
        3,
        "one invalid verdict asked again, two rounds"
    );

    let requests = s.fake.requests();
    let work: Vec<_> = requests
        .iter()
        .filter(|r| work_task(&r.body) == Some(id))
        .collect();
    assert_eq!(work.len(), 2, "sent back once to its author");
    let second = user(&work[1].body);
    assert!(
        second.contains("handle the empty input"),
        "the comments go back: {second}"
    );
    assert!(second.contains("Ta version précédente"));
    assert_eq!(speaker(&work[1].body), "ann");
    let retry = requests
        .iter()
        .filter(|r| review_task(&r.body) == Some(id))
        .nth(1)
        .unwrap();
    assert!(
        user(&retry.body).contains("n'était pas valide"),
        "the invalid answer is explained"
    );

    let events = s.task_events(id).await;
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "task.review_rejected")
            .count(),
        2
    );
    assert!(events.contains(&"task.escalated".to_string()));
    assert_eq!(events.last().map(String::as_str), Some("task.failed"));

    // A human acts on the escalation: reassigns, the work runs again, a human approves.
    s.fake.respond_with(default_reply);
    let r = s
        .api(0)
        .post(
            &format!("/circles/core/tasks/{id}/assign?agent_id={ann}"),
            s.t(),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let task = s.task_until("core", id, "completed", 30).await;
    assert_eq!(task["iteration"], 3);
    s.stop().await;
}

#[tokio::test]
async fn heavy_two_edges_and_two_executors_do_and_review_each_task_once() {
    let s = stack(2, 2).await;
    let mut members = Vec::new();
    for name in ["ann", "bob", "cid"] {
        members.push((s.agent(name).await, "rust", "quality"));
    }
    s.circle("core", json!({"max_concurrent_tasks": 8}), &members)
        .await;
    let mut ids = Vec::new();
    for i in 0..16 {
        let r = s
            .api(i % 2)
            .post(
                "/circles/core/tasks",
                s.t(),
                &json!({"title": format!("task {i}"), "required_competencies": ["rust"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    for id in &ids {
        let task = s.task_until("core", *id, "completed", 60).await;
        assert_ne!(
            task["reviewer_id"], task["assigned_agent_id"],
            "never its own reviewer"
        );
    }
    let requests = s.fake.requests();
    for id in &ids {
        let works = requests
            .iter()
            .filter(|r| work_task(&r.body) == Some(*id))
            .count();
        let reviews = requests
            .iter()
            .filter(|r| review_task(&r.body) == Some(*id))
            .count();
        if (works, reviews) != (1, 1) {
            let c = s.db.pool(1).get().await.unwrap();
            for r in c
                .query("SELECT kind, attempt, state::text, errors::text FROM queue.jobs WHERE (payload->>'task_id')::int8 = $1", &[id])
                .await
                .unwrap()
            {
                println!("{} attempt {} {}: {}", r.get::<_, String>(0), r.get::<_, i32>(1), r.get::<_, String>(2), r.get::<_, String>(3));
            }
        }
        assert_eq!((works, reviews), (1, 1), "task {id} done and reviewed once");
        let events = s.task_events(*id).await;
        assert_eq!(events.iter().filter(|k| *k == "task.completed").count(), 1);
    }
    let c = s.db.pool(1).get().await.unwrap();
    let rows: i64 = c
        .query_one("SELECT count(*) FROM review.reviews", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 16);
    drop(c);
    s.stop().await;
}

#[tokio::test]
async fn work_runs_inside_the_circle_project_and_touching_a_declared_file_is_a_conflict() {
    let s = stack(1, 1).await;
    let dir = crate::projects::TempDir::new();
    let project: i64 =
        s.db.pool(1)
            .get()
            .await
            .unwrap()
            .query_one(
                "INSERT INTO project.projects (name, local_path) VALUES ('app', $1) RETURNING id",
                &[&dir.0.to_str().unwrap()],
            )
            .await
            .unwrap()
            .get(0);
    let ann = s.agent("ann").await;
    let bob = s.agent("bob").await;
    s.db.pool(1)
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) \
             SELECT $1, id, true FROM agent.skills WHERE name = 'filesystem'",
            &[&ann],
        )
        .await
        .unwrap();
    s.circle(
        "app",
        json!({"project_id": project, "require_review": false}),
        &[(ann, "rust", ""), (bob, "docs", "")],
    )
    .await;
    // bob's task declares the file and stays at work; ann's writes it (and tries to escape).
    s.fake.respond_with(|body| {
        let has_tool_result = body["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
        if speaker(body) == "bob" && work_task(body).is_some() {
            return Some(Reply::text("docs").delay(std::time::Duration::from_secs(30)));
        }
        if speaker(body) == "ann" && work_task(body).is_some() && !has_tool_result {
            return Some(Reply::tool_calls(vec![
                gathering_testkit::fake_llm::FakeToolCall {
                    id: "c1".into(),
                    name: "fs_write".into(),
                    arguments: json!({"path": "src/lib.rs", "content": "pub fn parse() {}"}),
                },
                gathering_testkit::fake_llm::FakeToolCall {
                    id: "c2".into(),
                    name: "fs_write".into(),
                    arguments: json!({"path": "../escape.txt", "content": "x"}),
                },
            ]));
        }
        default_reply(body)
    });
    let api = s.api(0);
    let docs = api
        .post("/circles/app/tasks", s.t(), &json!({"title": "Docs", "required_competencies": ["docs"], "resources": ["src/lib.rs"]}))
        .await;
    assert_eq!(docs.body["assigned_agent_id"], bob);
    let parser = api
        .post(
            "/circles/app/tasks",
            s.t(),
            &json!({"title": "Parser", "required_competencies": ["rust"]}),
        )
        .await;
    let id = parser.body["id"].as_i64().unwrap();
    let task = s.task_until("app", id, "completed", 30).await;
    assert_eq!(
        task["files_modified"],
        json!(["src/lib.rs"]),
        "only the successful write"
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("src/lib.rs")).unwrap(),
        "pub fn parse() {}",
        "written inside the circle's project"
    );
    assert!(
        !dir.0.parent().unwrap().join("escape.txt").exists(),
        "nothing outside it"
    );
    let conflicts = api.get("/circles/app/conflicts", s.t()).await.body;
    assert_eq!(conflicts["total"], 1, "{conflicts}");
    let c = &conflicts["conflicts"][0];
    assert_eq!(
        (c["type"].as_str(), c["resource"].as_str()),
        (Some("file_collision"), Some("src/lib.rs"))
    );
    assert_eq!(c["agents"], json!([ann, bob]));
    assert_eq!(
        c["resolved"], true,
        "resolved when the parser task completed"
    );
    assert!(
        s.task_events(id)
            .await
            .contains(&"task.conflict.detected".to_string())
    );
    s.stop().await;
}
