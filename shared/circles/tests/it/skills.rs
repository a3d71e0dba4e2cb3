//! The agents' `circles` skill through a real tool registry (moved here from the tools crate
//! with the skill): the same rules as the API.

use gathering_circles::{Circles, CirclesConfig};
use gathering_tools::{CallContext, Grants, Toolbox, ToolsConfig};
use serde_json::{Value, json};

use crate::helpers::env;

fn user() -> CallContext {
    CallContext::new(Grants::all()).confirmed(true)
}

#[tokio::test]
async fn circles_membership_and_tasks() {
    let e = env().await;
    let config = ToolsConfig::default();
    let tb = Toolbox::new(Some(e.pool.clone()), config).unwrap();
    gathering_circles::skills::register(
        tb.registry(),
        Circles::new(e.pool.clone(), CirclesConfig::default()),
    )
    .unwrap();
    let ok = |tool: &'static str, input: Value| {
        let tb = &tb;
        async move {
            let r = tb.execute(tool, input, &user()).await;
            assert!(r.success, "{tool}: {r:?}");
            r.data
        }
    };
    let a = e.agent("dev").await;
    let b = e.agent("rev").await;
    let c = ok(
        "circle_create",
        json!({"name": "core-team", "description": "the core"}),
    )
    .await;
    let r = tb
        .execute("circle_create", json!({"name": "core-team"}), &user())
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    assert_eq!(r.message, "Circle 'core-team' already exists");
    ok(
        "circle_join",
        json!({"circle": "core-team", "agent_id": a, "role": "lead", "competencies": ["Rust"]}),
    )
    .await;
    ok(
        "circle_join",
        json!({"circle": c["circle_id"], "agent_id": b}),
    )
    .await;
    let members = ok("circle_members", json!({"circle": "core-team"})).await;
    assert_eq!(members["total"], 2);
    assert_eq!(
        (
            members["members"][0]["agent_name"].as_str(),
            members["members"][0]["role"].as_str()
        ),
        (Some("dev"), Some("lead"))
    );
    assert_eq!(members["members"][0]["competencies"], json!(["rust"]));
    ok(
        "circle_leave",
        json!({"circle": "core-team", "agent_id": b}),
    )
    .await;
    let r = tb
        .execute(
            "circle_leave",
            json!({"circle": "core-team", "agent_id": b}),
            &user(),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let got = ok("circle_get", json!({"circle": c["circle_id"]})).await;
    assert_eq!(got["members"].as_array().unwrap().len(), 1);
    let upd = ok(
        "circle_update",
        json!({"circle": "core-team", "require_review": false}),
    )
    .await;
    assert_eq!(upd["require_review"], false);
    let list = ok("circle_list", json!({})).await;
    assert_eq!(
        (
            list["total"].as_u64(),
            list["circles"][0]["member_count"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let r = tb
        .execute("circle_get", json!({"circle": "nope"}), &user())
        .await;
    assert_eq!(r.message, "Circle 'nope' not found");

    // Tasks: refused while stopped, routed once running.
    let r = tb
        .execute(
            "circle_task_create",
            json!({"circle": "core-team", "title": "Parser"}),
            &user(),
        )
        .await;
    assert_eq!(r.message, "Circle must be running to create tasks");
    gathering_circles::circles::start(&e.circles, "core-team")
        .await
        .unwrap();
    let t = ok(
        "circle_task_create",
        json!({"circle": "core-team", "title": "Parser", "required_competencies": ["rust"]}),
    )
    .await;
    assert_eq!(t["assigned_agent_id"], a);
    let tasks = ok(
        "circle_tasks",
        json!({"circle": "core-team", "status": "assigned"}),
    )
    .await;
    assert_eq!(tasks["total"], 1);

    // The calling agent is the default member, once it has the skill.
    let as_agent = CallContext::new(Grants::all()).agent(Some(b));
    let r = tb
        .registry()
        .call("circle_join", json!({"circle": "core-team"}), &as_agent)
        .await;
    assert!(
        matches!(r, Err(gathering_tools::ToolError::NotEnabled { .. })),
        "agents need the skill enabled: {r:?}"
    );
}
