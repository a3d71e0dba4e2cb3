//! GatheRing's own skills over a real database: projects (goals: gathering-agents; circles:
//! gathering-circles).

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

fn user() -> CallContext {
    CallContext::new(Grants::all()).confirmed(true)
}

async fn ok(e: &Env, tool: &str, input: Value) -> Value {
    let r = e.tb.execute(tool, input, &user()).await;
    assert!(r.success, "{tool}: {r:?}");
    r.data
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
