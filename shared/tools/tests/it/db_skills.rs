//! GatheRing's own skills over a real database: goals, projects (circles: gathering-circles).

use gathering_testkit::TestDb;
use gathering_tools::{CallContext, Grants, Toolbox};
use serde_json::{Value, json};

use crate::helpers::{TempDir, config};

struct Env {
    _db: TestDb,
    pool: gathering_db::Pool,
    tb: Toolbox,
}

async fn env() -> Env {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let tb = Toolbox::new(Some(pool.clone()), config("")).unwrap();
    Env { _db: db, pool, tb }
}

async fn agent(pool: &gathering_db::Pool, name: &str) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ($1) RETURNING id",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

fn user() -> CallContext {
    CallContext::new(Grants::all()).confirmed(true)
}

async fn ok(e: &Env, tool: &str, input: Value) -> Value {
    let r = e.tb.execute(tool, input, &user()).await;
    assert!(r.success, "{tool}: {r:?}");
    r.data
}

#[tokio::test]
async fn goals_lifecycle_with_activities() {
    let e = env().await;
    let a = agent(&e.pool, "planner").await;
    let g = ok(&e, "goal_create", json!({"agent_id": a, "title": "Ship v1", "priority": "high", "deadline": "2030-01-01T00:00:00Z", "tags": ["release"]})).await;
    let id = g["id"].as_i64().unwrap();
    assert_eq!(
        (g["status"].as_str(), g["priority"].as_str()),
        (Some("pending"), Some("high"))
    );
    let sub = ok(
        &e,
        "goal_add_subgoal",
        json!({"parent_id": id, "title": "Write docs"}),
    )
    .await;
    assert_eq!(
        (
            sub["agent_id"].as_i64(),
            sub["depth"].as_i64(),
            sub["priority"].as_str()
        ),
        (Some(a), Some(1), Some("high"))
    );
    let upd = ok(
        &e,
        "goal_update",
        json!({"goal_id": id, "status": "active", "progress_percent": 40}),
    )
    .await;
    assert_eq!(
        (upd["status"].as_str(), upd["progress_percent"].as_i64()),
        (Some("active"), Some(40))
    );
    let got = ok(&e, "goal_get", json!({"goal_id": id})).await;
    assert_eq!(got["subgoals"].as_array().unwrap().len(), 1);
    let list = ok(&e, "goal_list", json!({"agent_id": a, "status": "active"})).await;
    assert_eq!(list["total"], 1);
    let done = ok(
        &e,
        "goal_complete",
        json!({"goal_id": id, "result_summary": "shipped"}),
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["progress_percent"].as_i64()),
        (Some("completed"), Some(100))
    );
    let failed = ok(
        &e,
        "goal_fail",
        json!({"goal_id": sub["id"], "reason": "no time"}),
    )
    .await;
    assert_eq!(
        (failed["status"].as_str(), failed["status_message"].as_str()),
        (Some("failed"), Some("no time"))
    );
    let kinds: Vec<String> = e
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT activity_type FROM agent.goal_activities WHERE goal_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["created", "subgoal_added", "completed"]);

    let r =
        e.tb.execute("goal_get", json!({"goal_id": 999_999}), &user())
            .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let r =
        e.tb.execute(
            "goal_create",
            json!({"agent_id": 999_999, "title": "x"}),
            &user(),
        )
        .await;
    assert_eq!(
        r.error.as_deref(),
        Some("not_found"),
        "unknown agent: {r:?}"
    );
    let r =
        e.tb.execute("goal_create", json!({"title": "x"}), &user())
            .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "no agent: {r:?}");
    let r =
        e.tb.execute(
            "goal_create",
            json!({"agent_id": a, "title": "x", "deadline": "tomorrow"}),
            &user(),
        )
        .await;
    assert!(!r.success);
    let r =
        e.tb.execute(
            "goal_update",
            json!({"goal_id": id, "status": "weird"}),
            &user(),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"));
}

#[tokio::test]
async fn projects_skill_edits_the_project() {
    let e = env().await;
    let dir = TempDir::new();
    let id: i64 = e
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO project.projects (name, local_path) VALUES ('p', $1) RETURNING id",
            &[&dir.path().to_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    ok(
        &e,
        "project_add_note",
        json!({"project_id": id, "note": "use tabs"}),
    )
    .await;
    ok(
        &e,
        "project_add_convention",
        json!({"project_id": id, "key": "style", "value": "pep8"}),
    )
    .await;
    ok(
        &e,
        "project_add_command",
        json!({"project_id": id, "name": "test", "command": "pytest -q"}),
    )
    .await;
    let p = ok(
        &e,
        "project_add_key_file",
        json!({"project_id": id, "path": "app/main.py", "description": "entry point"}),
    )
    .await;
    assert_eq!(p["notes"], json!(["use tabs"]));
    assert_eq!(p["conventions"], json!({"style": "pep8"}));
    assert_eq!(p["commands"]["test"], "pytest -q");
    assert_eq!(p["key_files"]["app/main.py"], "entry point");
    let p = ok(
        &e,
        "project_remove_note",
        json!({"project_id": id, "note": "use tabs"}),
    )
    .await;
    assert_eq!(p["notes"], json!([]));
    let p = ok(
        &e,
        "project_update",
        json!({"project_id": id, "description": "desc", "status": "archived"}),
    )
    .await;
    assert_eq!(
        (p["description"].as_str(), p["status"].as_str()),
        (Some("desc"), Some("archived"))
    );
    let ctxt = ok(&e, "project_context", json!({"project_id": id})).await;
    assert!(
        ctxt["prompt_context"]
            .as_str()
            .unwrap()
            .contains("pytest -q")
    );
    let list = ok(&e, "project_list", json!({"status": "archived"})).await;
    assert_eq!(list["total"], 1);
    // The project of the call is the default.
    let in_project = user().project(Some(dir.root().with_id(id)));
    let r = e.tb.execute("project_get", json!({}), &in_project).await;
    assert_eq!(r.data["id"], id, "{r:?}");
    let r = e.tb.execute("project_get", json!({}), &user()).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    let r =
        e.tb.execute("project_get", json!({"project_id": 424242}), &user())
            .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
}
