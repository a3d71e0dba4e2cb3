//! Task flows without executors: what the API side and the transitions do in the database.

use gathering_circles::circles::{self, NewCircle};
use gathering_circles::conversations::{self, NewConversation};
use gathering_circles::{CircleError, conflicts, metrics, tasks};
use serde_json::json;

use crate::helpers::env;

#[tokio::test]
async fn routing_prefers_coverage_then_workload_and_waits_for_a_qualified_member() {
    let e = env().await;
    e.circle("core", false, None).await;
    let a = e.agent("ann").await;
    let b = e.agent("bob").await;
    let c = e.agent("cid").await;
    e.join("core", a, &["Rust"], &[]).await;
    e.join("core", b, &["rust", "sql"], &[]).await;
    e.join("core", c, &["python"], &[]).await;

    let t1 = e.task("core", "schema", &["rust", "sql"], &[]).await;
    assert_eq!(t1["assigned_agent_id"], b, "best coverage");
    assert_eq!(t1["status"], "assigned");
    let t2 = e.task("core", "parser", &["RUST"], &[]).await;
    assert_eq!(t2["assigned_agent_id"], a, "same coverage, lower workload");
    let t3 = e.task("core", "docs", &[], &[]).await;
    assert_eq!(
        t3["assigned_agent_id"], c,
        "no requirement: the least loaded"
    );
    let t4 = e.task("core", "service", &["go"], &[]).await;
    assert_eq!(t4["status"], "pending");
    assert_eq!(t4["status_reason"], "no qualified member");
    assert!(t4["assigned_agent_id"].is_null());

    // Admitted work has its job; the pending task has none yet.
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work' AND queue = 'circles'",
            &[],
        )
        .await;
    assert_eq!(jobs, 3);

    // A qualified member joins: the pending task is routed to it and admitted.
    let d = e.agent("dan").await;
    e.join("core", d, &["go"], &[]).await;
    let t4 = tasks::get(&e.circles, "core", t4["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (t4["status"].as_str(), t4["assigned_agent_id"].as_i64()),
        (Some("assigned"), Some(d))
    );
    assert!(t4["status_reason"].is_null());
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work'",
            &[],
        )
        .await;
    assert_eq!(jobs, 4);
    let kinds = e.event_kinds().await;
    assert_eq!(kinds.iter().filter(|k| *k == "task.assigned").count(), 4);
    assert!(kinds.contains(&"circle.member.added".to_string()));

    // Already a member: 409; unknown agent: 404; unknown circle: 404.
    let again = circles::add_member(
        &e.circles,
        "core",
        &circles::NewMember {
            agent_id: a,
            role: None,
            competencies: vec![],
            can_review: vec![],
        },
        false,
    )
    .await;
    assert!(matches!(again, Err(CircleError::Exists(_))), "{again:?}");
    let ghost = circles::add_member(
        &e.circles,
        "core",
        &circles::NewMember {
            agent_id: 999_999,
            role: None,
            competencies: vec![],
            can_review: vec![],
        },
        false,
    )
    .await;
    assert!(matches!(ghost, Err(CircleError::AgentNotFound(999_999))));
    assert!(matches!(
        tasks::get(&e.circles, "nope", 1).await,
        Err(CircleError::CircleNotFound(_))
    ));
}

#[tokio::test]
async fn admission_keeps_to_the_circle_slots_and_a_stopped_circle_takes_no_task() {
    let e = env().await;
    circles::create(
        &e.circles,
        &NewCircle {
            name: "small".into(),
            display_name: None,
            description: None,
            require_review: false,
            auto_route: true,
            max_concurrent_tasks: 2,
            project_id: None,
            max_review_rounds: None,
            owner: None,
        },
    )
    .await
    .unwrap();
    let a = e.agent("ann").await;
    e.join("small", a, &[], &[]).await;
    // Stopped: no task.
    let refused = tasks::create(
        &e.circles,
        "small",
        &tasks::NewTask {
            title: "x".into(),
            ..Default::default()
        },
    )
    .await;
    match refused {
        Err(CircleError::BadRequest(m)) => assert_eq!(m, "Circle must be running to create tasks"),
        other => panic!("{other:?}"),
    }
    circles::start(&e.circles, "small").await.unwrap();
    assert_eq!(
        circles::start(&e.circles, "small").await.unwrap(),
        "already_running"
    );
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            e.task("small", &format!("t{i}"), &[], &[]).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let dispatched = || async {
        e.scalar::<i64>("SELECT count(*) FROM circle.tasks WHERE dispatched", &[])
            .await
    };
    assert_eq!(dispatched().await, 2, "two slots");
    // A result (through the API) frees a slot: the next task is admitted in that transaction.
    let done = tasks::submit(&e.circles, "small", ids[0], "done", &[])
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], "done");
    assert_eq!(dispatched().await, 2);
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work'",
            &[],
        )
        .await;
    assert_eq!(jobs, 3);
    // Submitting twice is refused.
    let twice = tasks::submit(&e.circles, "small", ids[0], "again", &[]).await;
    assert!(
        matches!(twice, Err(CircleError::BadRequest(_))),
        "{twice:?}"
    );

    assert_eq!(circles::stop(&e.circles, "small").await.unwrap(), "stopped");
    assert_eq!(
        circles::stop(&e.circles, "small").await.unwrap(),
        "already_stopped"
    );
    tasks::submit(&e.circles, "small", ids[1], "done", &[])
        .await
        .unwrap();
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work'",
            &[],
        )
        .await;
    assert_eq!(jobs, 3, "a stopped circle admits nothing");
    circles::start(&e.circles, "small").await.unwrap();
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work'",
            &[],
        )
        .await;
    assert_eq!(jobs, 4, "started again: waiting work admitted");

    let m = metrics::metrics(&e.circles, "small").await.unwrap();
    assert_eq!(
        (
            m["total_tasks"].as_i64(),
            m["completed_tasks"].as_i64(),
            m["active_tasks"].as_i64()
        ),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(m["agents"][0]["tasks_completed"], 2);
    assert_eq!(m["agents"][0]["current_workload"], 2);

    // Delete is soft: the name can be reused, waiting tasks fail.
    circles::delete(&e.circles, "small").await.unwrap();
    assert!(matches!(
        circles::start(&e.circles, "small").await,
        Err(CircleError::CircleNotFound(_))
    ));
    let failed: i64 = e
        .scalar("SELECT count(*) FROM circle.tasks WHERE status = 'failed' AND status_reason = 'circle deleted'", &[])
        .await;
    assert_eq!(failed, 2);
    e.circle("small", false, None).await;
}

#[tokio::test]
async fn conflicts_are_recorded_once_and_resolved_when_a_task_finishes() {
    let e = env().await;
    e.circle("core", false, None).await;
    let a = e.agent("ann").await;
    let b = e.agent("bob").await;
    e.join("core", a, &[], &[]).await;
    e.join("core", b, &[], &[]).await;
    let t1 = e.task("core", "one", &[], &["./src/lib.rs"]).await;
    assert_eq!(t1["resources"], json!(["src/lib.rs"]));
    let t2 = e
        .task("core", "two", &[], &["src/lib.rs", "billing-db"])
        .await;
    let t3 = e.task("core", "three", &[], &["billing-db"]).await;
    let id = |t: &serde_json::Value| t["id"].as_i64().unwrap();

    let list = conflicts::list(&e.circles, "core", None).await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let file = list.iter().find(|c| c["resource"] == "src/lib.rs").unwrap();
    assert_eq!(file["type"], "file_collision");
    assert_eq!(file["tasks"], json!([id(&t1), id(&t2)]));
    assert_eq!(file["agents"], json!([a, b]));
    assert_eq!(file["resolved"], false);
    let db = list.iter().find(|c| c["resource"] == "billing-db").unwrap();
    assert_eq!(db["type"], "resource");

    // Touching a file another active task declared is a conflict too (recorded once).
    tasks::submit(&e.circles, "core", id(&t3), "done", &["src/lib.rs".into()])
        .await
        .unwrap();
    let list = conflicts::list(&e.circles, "core", None).await.unwrap();
    let open: Vec<_> = list.iter().filter(|c| c["resolved"] == false).collect();
    // t3 completed: its two conflicts (declared db, touched lib.rs) are resolved.
    assert_eq!(list.len(), 4, "{list:?}");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["tasks"], json!([id(&t1), id(&t2)]));

    let resolved = conflicts::resolve(
        &e.circles,
        "core",
        open[0]["id"].as_i64().unwrap(),
        "t2 goes first",
        "user-1",
    )
    .await
    .unwrap();
    assert_eq!(resolved["resolution"], "t2 goes first");
    let again = conflicts::resolve(
        &e.circles,
        "core",
        open[0]["id"].as_i64().unwrap(),
        "x",
        "u",
    )
    .await;
    assert!(matches!(again, Err(CircleError::BadRequest(_))));
    let kinds = e.event_kinds().await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "task.conflict.detected")
            .count(),
        4
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "task.conflict.resolved")
            .count(),
        4
    );
}

#[tokio::test]
async fn conversations_validate_their_input_and_their_state() {
    let e = env().await;
    e.circle("talk", false, None).await;
    let a = e.agent("ann").await;
    let b = e.agent("bob").await;
    let outsider = e.agent("out").await;
    e.join("talk", a, &[], &[]).await;
    e.join("talk", b, &[], &[]).await;
    let new = |ids: Vec<i64>, turns: i32, strategy: &str| NewConversation {
        topic: "Release plan".into(),
        agent_ids: ids,
        max_turns: turns,
        initial_prompt: String::new(),
        strategy: strategy.into(),
        created_by: None,
    };
    match conversations::create(&e.circles, "talk", &new(vec![], 0, "chaos")).await {
        Err(CircleError::Invalid(v)) => {
            let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
            assert_eq!(fields, vec!["agent_ids", "max_turns", "turn_strategy"]);
        }
        other => panic!("{other:?}"),
    }
    let r = conversations::create(
        &e.circles,
        "talk",
        &new(vec![a, outsider], 3, "round_robin"),
    )
    .await;
    assert!(
        matches!(r, Err(CircleError::BadRequest(ref m)) if m.contains("not in circle")),
        "{r:?}"
    );
    assert!(matches!(
        conversations::create(&e.circles, "nope", &new(vec![a], 3, "round_robin")).await,
        Err(CircleError::CircleNotFound(_))
    ));
    let conv = conversations::create(&e.circles, "talk", &new(vec![b, a], 3, "mention_based"))
        .await
        .unwrap();
    assert_eq!(conv["status"], "pending");
    assert_eq!(conv["participant_names"], json!(["bob", "ann"]));
    let id = conv["conversation_id"].as_i64().unwrap();
    assert!(matches!(
        conversations::advance(&e.circles, id, None, 5, false).await,
        Err(CircleError::BadRequest(_))
    ));
    conversations::start(&e.circles, id).await.unwrap();
    assert!(matches!(
        conversations::start(&e.circles, id).await,
        Err(CircleError::BadRequest(_))
    ));
    let jobs: i64 = e
        .scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'conversation.run'",
            &[],
        )
        .await;
    assert_eq!(jobs, 1);
    // Advancing an active run only raises its limit (and adds the user's message).
    conversations::advance(&e.circles, id, Some("And the budget?"), 5, false)
        .await
        .unwrap();
    let (limit, jobs): (i32, i64) = (
        e.scalar(
            "SELECT turn_limit FROM communication.conversations WHERE id = $1",
            &[&id],
        )
        .await,
        e.scalar(
            "SELECT count(*) FROM queue.jobs WHERE kind = 'conversation.run'",
            &[],
        )
        .await,
    );
    assert_eq!((limit, jobs), (3, 1));
    assert_eq!(
        conversations::cancel(&e.circles, id).await.unwrap(),
        "cancelled"
    );
    assert_eq!(
        conversations::cancel(&e.circles, id).await.unwrap(),
        "already_finished"
    );
    let state: String = e
        .scalar(
            "SELECT state::text FROM queue.jobs WHERE kind = 'conversation.run'",
            &[],
        )
        .await;
    assert_eq!(state, "cancelled", "the run's job is cancelled");
    conversations::delete(&e.circles, id).await.unwrap();
    assert!(matches!(
        conversations::cancel(&e.circles, id).await,
        Err(CircleError::ConversationNotFound(_))
    ));
    let kinds = e.event_kinds().await;
    assert!(
        kinds.contains(&"conversation.message".to_string()),
        "the user's message"
    );
}
