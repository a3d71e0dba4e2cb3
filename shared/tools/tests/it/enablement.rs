//! Per-agent enablement in `agent.agent_tools`: an agent can use a skill only when enabled;
//! usage is counted; the REST helpers.

use gathering_testkit::TestDb;
use gathering_tools::enablement;
use gathering_tools::{CallContext, Grants, ToolError, Toolbox};
use serde_json::json;

use crate::helpers::{TempDir, config};

#[tokio::test]
async fn an_agent_uses_only_enabled_skills_and_usage_is_counted() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let tb = Toolbox::new(Some(pool.clone()), config("")).unwrap();
    let client = pool.get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('a1') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let dir = TempDir::new();
    dir.write("f.txt", "content");
    let ctx = CallContext::new(Grants::all())
        .confirmed(true)
        .agent(Some(agent))
        .project(Some(dir.root()));

    let err = tb
        .registry()
        .call("fs_read", json!({"path": "f.txt"}), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotEnabled { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("Skill 'filesystem' is not enabled for agent {agent}")
    );
    // Validation still comes first: a bad input is reported as such.
    let err = tb
        .registry()
        .call("fs_read", json!({}), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Validation { .. }));

    assert!(
        enablement::set_skill(&client, agent, "filesystem", true)
            .await
            .unwrap()
    );
    assert!(
        !enablement::set_skill(&client, agent, "no-such-skill", true)
            .await
            .unwrap()
    );
    let out = tb
        .registry()
        .call("fs_read", json!({"path": "f.txt"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.data["content"], "content");
    tb.registry()
        .call("fs_read", json!({"path": "f.txt"}), &ctx)
        .await
        .unwrap();
    let tools = enablement::agent_tools(&client, agent).await.unwrap();
    let fs = tools
        .iter()
        .find(|t| t["skill_name"] == "filesystem")
        .unwrap();
    assert_eq!(
        (fs["is_enabled"].as_bool(), fs["usage_count"].as_i64()),
        (Some(true), Some(2))
    );
    assert!(fs["last_used_at"].is_string());

    // A globally disabled skill is off for everyone.
    client
        .execute(
            "UPDATE agent.skills SET is_enabled = false WHERE name = 'filesystem'",
            &[],
        )
        .await
        .unwrap();
    let err = tb
        .registry()
        .call("fs_read", json!({"path": "f.txt"}), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotEnabled { .. }));
    client
        .execute(
            "UPDATE agent.skills SET is_enabled = true WHERE name = 'filesystem'",
            &[],
        )
        .await
        .unwrap();

    assert!(
        enablement::set_skill(&client, agent, "filesystem", false)
            .await
            .unwrap()
    );
    assert!(
        tb.registry()
            .call("fs_read", json!({"path": "f.txt"}), &ctx)
            .await
            .is_err()
    );
    // A user's own call (no agent) is not subject to enablement.
    let user = CallContext::new(Grants::all()).project(Some(dir.root()));
    assert!(
        tb.registry()
            .call("fs_read", json!({"path": "f.txt"}), &user)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn bulk_enable_all_and_disable_all() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('a2') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        enablement::enabled_skills(&client, agent).await.unwrap(),
        Vec::<String>::new()
    );
    let n = enablement::set_skills(
        &client,
        agent,
        &["git".into(), "http".into(), "bogus".into()],
        true,
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        enablement::enabled_skills(&client, agent).await.unwrap(),
        ["git", "http"]
    );
    let n = enablement::enable_all(&client, agent, Some("gathering"))
        .await
        .unwrap();
    assert_eq!(n, 6);
    let n = enablement::disable_all(&client, agent, Some("web"))
        .await
        .unwrap();
    assert_eq!(n, 1, "only http was enabled in web");
    let all = enablement::enabled_skills(&client, agent).await.unwrap();
    assert_eq!(all.len(), 7, "{all:?}");
    let n = enablement::enable_all(&client, agent, None).await.unwrap();
    assert_eq!(n, 25);
    assert_eq!(
        enablement::disable_all(&client, agent, None).await.unwrap(),
        25
    );
    assert!(
        enablement::enabled_skills(&client, agent)
            .await
            .unwrap()
            .is_empty()
    );
    let skills = enablement::list_skills(&client, Some("web")).await.unwrap();
    assert_eq!(skills.len(), 3);
    let cats = enablement::skill_categories(&client).await.unwrap();
    assert_eq!(cats["gathering"], 6);
    assert_eq!(
        enablement::agent_name(&client, agent)
            .await
            .unwrap()
            .as_deref(),
        Some("a2")
    );
    assert_eq!(
        enablement::agent_name(&client, 999_999).await.unwrap(),
        None
    );
}
