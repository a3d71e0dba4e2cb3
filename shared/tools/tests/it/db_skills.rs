//! GatheRing's own skills over a real database: circles, projects (goals: gathering-agents).

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
async fn circles_membership() {
    let e = env().await;
    let a = agent(&e.pool, "dev").await;
    let b = agent(&e.pool, "rev").await;
    let c = ok(
        &e,
        "circle_create",
        json!({"name": "core-team", "description": "the core"}),
    )
    .await;
    let r =
        e.tb.execute("circle_create", json!({"name": "core-team"}), &user())
            .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    assert_eq!(r.message, "Circle 'core-team' already exists");
    ok(
        &e,
        "circle_join",
        json!({"circle": "core-team", "agent_id": a, "role": "lead", "competencies": ["rust"]}),
    )
    .await;
    ok(&e, "circle_join", json!({"circle": c["id"], "agent_id": b})).await;
    let members = ok(&e, "circle_members", json!({"circle": "core-team"})).await;
    assert_eq!(members["total"], 2);
    assert_eq!(
        (
            members["members"][0]["agent_name"].as_str(),
            members["members"][0]["role"].as_str()
        ),
        (Some("dev"), Some("lead"))
    );
    ok(
        &e,
        "circle_leave",
        json!({"circle": "core-team", "agent_id": b}),
    )
    .await;
    let r =
        e.tb.execute(
            "circle_leave",
            json!({"circle": "core-team", "agent_id": b}),
            &user(),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let got = ok(&e, "circle_get", json!({"circle": c["id"]})).await;
    assert_eq!(got["members"].as_array().unwrap().len(), 1);
    let upd = ok(
        &e,
        "circle_update",
        json!({"circle": "core-team", "require_review": false}),
    )
    .await;
    assert_eq!(upd["require_review"], false);
    let list = ok(&e, "circle_list", json!({})).await;
    assert_eq!(
        (
            list["total"].as_u64(),
            list["circles"][0]["member_count"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let r =
        e.tb.execute("circle_get", json!({"circle": "nope"}), &user())
            .await;
    assert_eq!(r.message, "Circle 'nope' not found");
    // The calling agent is the default member.
    let as_agent = CallContext::new(Grants::all()).agent(Some(b));
    let r =
        e.tb.registry()
            .call("circle_join", json!({"circle": "core-team"}), &as_agent)
            .await;
    assert!(
        matches!(r, Err(gathering_tools::ToolError::NotEnabled { .. })),
        "agents need the skill enabled: {r:?}"
    );
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
