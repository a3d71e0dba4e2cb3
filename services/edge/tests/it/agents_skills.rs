//! An agent's skills through a real edge: the configured skills (`agent.agents.skill_names`)
//! kept consistent with per-agent tool enablement.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::Api;

use crate::agents_crud::{create_agent, delete, open_edge, put};

#[tokio::test]
async fn skills_keep_configuration_and_enablement_consistent() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let id = create_agent(&api, "Ada").await;
    // A catalogue entry with no tools in this process (as a plugin's skill whose server is not
    // loaded here): the built-in catalogue lists only families with tools.
    db.pool(1)
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO agent.skills (name, description) VALUES ('social', 'no tools here')",
            &[],
        )
        .await
        .unwrap();
    let enabled = |api: Api| async move {
        api.get(&format!("/tools/agents/{id}/enabled"), None)
            .await
            .body["enabled_skills"]
            .clone()
    };

    let r = api.get(&format!("/agents/{id}/skills"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (
            r.body["configured_skills"].clone(),
            r.body["loaded_skills"].clone()
        ),
        (json!([]), json!([]))
    );
    // 25 built-in families and the test's own.
    assert_eq!(r.body["available_skills"].as_array().unwrap().len(), 26);

    let r = api
        .post(&format!("/agents/{id}/skills/git"), None, &json!({}))
        .await;
    assert_eq!(
        (
            r.body["status"].as_str(),
            r.body["skills"].clone(),
            r.body["tools_count"].as_i64()
        ),
        (Some("added"), json!(["git"]), Some(10))
    );
    let r = api
        .post(&format!("/agents/{id}/skills/git"), None, &json!({}))
        .await;
    assert_eq!(r.body["status"], "already_exists");
    assert_eq!(
        enabled(api.clone()).await,
        json!(["git"]),
        "configuring enables"
    );

    let r = api
        .post(&format!("/agents/{id}/skills/nope'%3B--"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid skill name: nope';--. Available: ['ai', "),
        "{:?}",
        r.body
    );

    let r = put(
        &api,
        &format!("/agents/{id}/skills"),
        &json!(["filesystem", "social", "git", "git"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["configured_skills"],
        json!(["filesystem", "social", "git"])
    );
    assert_eq!(r.body["loaded_skills"], json!(["filesystem", "git"]));
    assert_eq!(
        r.body["failed_skills"],
        json!([{"skill": "social", "error": "No tools are available for skill 'social'"}])
    );
    assert_eq!(r.body["tools_count"], 20);
    assert_eq!(
        enabled(api.clone()).await,
        json!(["filesystem", "git", "social"])
    );

    let r = put(
        &api,
        &format!("/agents/{id}/skills"),
        &json!(["git", "bogus", "worse"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid skill names: ['bogus', 'worse']. Available: [")
    );
    let r = api.get(&format!("/agents/{id}/skills"), None).await;
    assert_eq!(
        r.body["configured_skills"],
        json!(["filesystem", "social", "git"]),
        "unchanged"
    );
    let git = r.body["skill_details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "git")
        .unwrap()
        .clone();
    assert_eq!(
        (git["tools_count"].as_i64(), git["version"].as_str()),
        (Some(10), Some("1.0.0"))
    );
    assert!(
        git["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "git_status"),
        "{git}"
    );
    assert!(
        git["description"]
            .as_str()
            .unwrap()
            .contains("Version control")
    );
    let r = put(&api, &format!("/agents/{id}/skills"), &json!("git")).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bare array is required"
    );

    // PUT makes the enabled set exactly the list.
    let r = put(&api, &format!("/agents/{id}/skills"), &json!(["git"])).await;
    assert_eq!(r.body["failed_skills"], json!([]));
    assert_eq!(enabled(api.clone()).await, json!(["git"]));
    let client = db.pool(1).get().await.unwrap();
    client
        .execute(
            "UPDATE agent.skills SET is_enabled = false WHERE name = 'git'",
            &[],
        )
        .await
        .unwrap();
    let r = put(&api, &format!("/agents/{id}/skills"), &json!(["git"])).await;
    assert_eq!(
        r.body["failed_skills"],
        json!([{"skill": "git", "error": "Skill 'git' is disabled"}])
    );
    client
        .execute(
            "UPDATE agent.skills SET is_enabled = true WHERE name = 'git'",
            &[],
        )
        .await
        .unwrap();

    let r = delete(&api, &format!("/agents/{id}/skills/git")).await;
    assert_eq!(
        (
            r.body["status"].as_str(),
            r.body["skills"].clone(),
            r.body["tools_count"].as_i64()
        ),
        (Some("removed"), json!([]), Some(0))
    );
    assert_eq!(enabled(api.clone()).await, json!([]), "removing disables");
    let r = delete(&api, &format!("/agents/{id}/skills/git")).await;
    assert_eq!(r.body["status"], "not_found");

    let r = api
        .post(&format!("/agents/{id}/skills/filesystem"), None, &json!({}))
        .await;
    assert_eq!(r.body["tools_count"], 10);
    let r = api.get(&format!("/agents/{id}"), None).await;
    assert_eq!(
        (r.body["skills"].clone(), r.body["tools_count"].as_i64()),
        (json!(["filesystem"]), Some(10))
    );

    for r in [
        api.get("/agents/999999/skills", None).await,
        api.post("/agents/999999/skills/git", None, &json!({}))
            .await,
        delete(&api, "/agents/999999/skills/git").await,
        put(&api, "/agents/999999/skills", &json!(["git"])).await,
    ] {
        assert_eq!(
            (r.status, r.body["detail"].as_str()),
            (StatusCode::NOT_FOUND, Some("Agent 999999 not found"))
        );
    }

    edge.stop().await;
    auth.stop().await;
}
