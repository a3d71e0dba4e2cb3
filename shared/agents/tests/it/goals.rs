//! The `goals` skill over a real database: its tools go through `gathering_agents::goals`, so
//! an agent's change follows the same rules and leaves the same activities (actor = the agent)
//! as one made through `/goals`.

use std::sync::Arc;

use gathering_agents::skills::{PlatformDeps, register_platform};
use gathering_testkit::TestDb;
use gathering_tools::{CallContext, Grants, Toolbox, ToolsConfig};
use serde_json::{Value, json};

struct Env {
    _db: TestDb,
    pool: gathering_db::Pool,
    tb: Arc<Toolbox>,
    agent: i64,
}

async fn env() -> Env {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let tb = Arc::new(Toolbox::new(Some(pool.clone()), ToolsConfig::default()).unwrap());
    // The gateway is never called by these tools; a lazy client suffices.
    let llm = gathering_agents::Llm::connect(
        "http://127.0.0.1:9",
        "",
        gathering_testkit::service_auth("test"),
    )
    .unwrap();
    register_platform(
        tb.registry(),
        PlatformDeps {
            pool: pool.clone(),
            llm,
            queue: gathering_queue::Queue::new(pool.clone()),
            max_live_tasks: 5,
            default_model: "openai/gpt-4o".into(),
        },
    )
    .unwrap();
    let agent: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('planner') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    pool.get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) SELECT $1, id, true FROM agent.skills WHERE name = 'goals'",
            &[&agent],
        )
        .await
        .unwrap();
    Env {
        _db: db,
        pool,
        tb,
        agent,
    }
}

fn as_agent(agent: i64) -> CallContext {
    CallContext::new(Grants::all())
        .confirmed(true)
        .agent(Some(agent))
}

async fn ok(e: &Env, tool: &str, input: Value) -> Value {
    let r = e.tb.execute(tool, input, &as_agent(e.agent)).await;
    assert!(r.success, "{tool}: {r:?}");
    r.data
}

#[tokio::test]
async fn the_goals_skill_follows_the_goal_rules() {
    let e = env().await;
    let g = ok(
        &e,
        "goal_create",
        json!({"title": "Ship v1", "priority": "high", "deadline": "2030-01-01T00:00:00Z", "tags": ["release"]}),
    )
    .await;
    let id = g["id"].as_i64().unwrap();
    assert_eq!(
        (
            g["status"].as_str(),
            g["priority"].as_str(),
            g["agent_id"].as_i64()
        ),
        (Some("pending"), Some("high"), Some(e.agent)),
        "the calling agent owns it"
    );
    let sub = ok(
        &e,
        "goal_add_subgoal",
        json!({"parent_id": id, "title": "Write docs"}),
    )
    .await;
    assert_eq!(
        (sub["depth"].as_i64(), sub["priority"].as_str()),
        (Some(1), Some("high"))
    );
    let sid = sub["id"].as_i64().unwrap();

    // Progress of a subgoal rolls up; the parent's own progress cannot be set.
    let upd = ok(
        &e,
        "goal_update",
        json!({"goal_id": sid, "status": "active", "progress_percent": 40}),
    )
    .await;
    assert_eq!(
        (upd["status"].as_str(), upd["attempts"].as_i64()),
        (Some("active"), Some(1))
    );
    assert_eq!(
        ok(&e, "goal_get", json!({"goal_id": id})).await["progress_percent"],
        40
    );
    let r =
        e.tb.execute(
            "goal_update",
            json!({"goal_id": id, "progress_percent": 10}),
            &as_agent(e.agent),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    let got = ok(&e, "goal_get", json!({"goal_id": id})).await;
    assert_eq!(got["subgoals"].as_array().unwrap().len(), 1);
    let list = ok(
        &e,
        "goal_list",
        json!({"agent_id": e.agent, "status": "active"}),
    )
    .await;
    assert_eq!(list["total"], 1);

    // Completing the only subgoal completes the parent.
    ok(
        &e,
        "goal_complete",
        json!({"goal_id": sid, "result_summary": "docs written"}),
    )
    .await;
    let parent = ok(&e, "goal_get", json!({"goal_id": id})).await;
    assert_eq!(
        (
            parent["status"].as_str(),
            parent["progress_percent"].as_i64()
        ),
        (Some("completed"), Some(100))
    );
    let r =
        e.tb.execute(
            "goal_fail",
            json!({"goal_id": id, "reason": "late"}),
            &as_agent(e.agent),
        )
        .await;
    assert_eq!(
        r.error.as_deref(),
        Some("invalid_input"),
        "a completed goal does not fail: {r:?}"
    );

    let rows = e
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT activity_type, actor_type, actor_id FROM agent.goal_activities WHERE goal_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .unwrap();
    let kinds: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(kinds, ["created", "subgoal_added", "progress", "completed"]);
    let (actor, actor_id): (String, Option<String>) = (rows[0].get(1), rows[0].get(2));
    assert_eq!(
        (actor.as_str(), actor_id),
        ("agent", Some(e.agent.to_string()))
    );
    let system: String = rows[3].get(1);
    assert_eq!(system, "system", "the roll-up completed it");

    let r =
        e.tb.execute("goal_get", json!({"goal_id": 999_999}), &as_agent(e.agent))
            .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let r =
        e.tb.execute(
            "goal_create",
            json!({"agent_id": 999_999, "title": "x"}),
            &as_agent(e.agent),
        )
        .await;
    assert_eq!(
        r.error.as_deref(),
        Some("not_found"),
        "unknown agent: {r:?}"
    );
    let no_agent = CallContext::new(Grants::all()).confirmed(true);
    let r =
        e.tb.execute("goal_create", json!({"title": "x"}), &no_agent)
            .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "no agent: {r:?}");
    let r =
        e.tb.execute(
            "goal_create",
            json!({"title": "x", "deadline": "tomorrow"}),
            &as_agent(e.agent),
        )
        .await;
    assert!(!r.success);
    let r =
        e.tb.execute(
            "goal_update",
            json!({"goal_id": id, "status": "weird"}),
            &as_agent(e.agent),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"));
}
