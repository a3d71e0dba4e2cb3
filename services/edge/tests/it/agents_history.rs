//! An agent's history, session and status through a real edge (contract §2.3).

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_crud::{create_agent, delete, open_edge};

#[tokio::test]
async fn history_session_and_status() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let id = create_agent(&api, "Ada").await;
    let client = db.pool(1).get().await.unwrap();
    for (i, (role, content)) in [
        ("user", "hello"),
        ("assistant", "hi!"),
        ("tool", "{}"),
        ("user", "how are you?"),
        ("assistant", "fine"),
    ]
    .iter()
    .enumerate()
    {
        client
            .execute(
                "INSERT INTO communication.chat_history (agent_id, role, content, created_at) \
                 VALUES ($1, $2::text::message_role, $3, now() - make_interval(secs => 10 - $4::float8))",
                &[&id, role, content, &(i as f64)],
            )
            .await
            .unwrap();
    }

    let r = api
        .get(&format!("/agents/{id}/history?limit=3"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let msgs = r.body["messages"].as_array().unwrap();
    let contents: Vec<&str> = msgs
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        vec!["hi!", "how are you?", "fine"],
        "the last three, oldest first, tool rows left out"
    );
    assert_eq!(
        (
            msgs[0]["agent_name"].as_str(),
            msgs[1]["agent_name"].clone()
        ),
        (Some("Ada"), Value::Null)
    );
    assert!(msgs[0]["timestamp"].as_str().unwrap().ends_with("+00:00"));
    let r = api.get(&format!("/agents/{id}/history"), None).await;
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 4);
    assert_eq!(
        api.get(&format!("/agents/{id}/history?limit=0"), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let empty = create_agent(&api, "Bob").await;
    assert_eq!(
        api.get(&format!("/agents/{empty}/history"), None)
            .await
            .body,
        json!({"messages": []})
    );
    let r = api.get("/agents/999999/history", None).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Agent 999999 not found"))
    );

    // Status before any session.
    let r = api.get(&format!("/agents/{id}/status"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (
            r.body["is_processing"].as_bool(),
            r.body["session"]["status"].as_str()
        ),
        (Some(false), Some("inactive"))
    );

    for f in ["src/main.rs", "src/lib.rs", "src/main.rs"] {
        let r = api
            .post(
                &format!("/agents/{id}/session/track-file?file_path={f}"),
                None,
                &json!({}),
            )
            .await;
        assert_eq!(r.body, json!({"status": "ok", "file": f}));
    }
    let r = api
        .post(
            &format!(
                "/agents/{id}/session/set-task?task_id=7&title=Fix%20the%20build&progress=half"
            ),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"status": "ok", "task_id": 7, "title": "Fix the build"})
    );
    let r = api.get(&format!("/agents/{id}/status"), None).await;
    let s = &r.body["session"];
    assert_eq!(s["status"], "active");
    assert_eq!(
        s["working_files"],
        json!(["src/lib.rs", "src/main.rs"]),
        "deduplicated, most recent last"
    );
    assert_eq!(
        (
            s["current_task"].as_str(),
            s["time_since"].as_str(),
            s["needs_resume"].as_bool()
        ),
        (
            Some("Fix the build"),
            Some("quelques secondes"),
            Some(false)
        )
    );
    assert_eq!(
        (
            r.body["name"].as_str(),
            r.body["provider"].as_str(),
            r.body["project"].clone()
        ),
        (Some("Ada"), Some("openai"), Value::Null)
    );
    let r = api.get(&format!("/agents/{id}"), None).await;
    assert_eq!(r.body["current_task"], "Fix the build");
    assert_eq!(
        r.body["session"]["working_files"],
        json!(["src/lib.rs", "src/main.rs"])
    );
    let r = delete(&api, &format!("/agents/{id}/session/task")).await;
    assert_eq!(r.body, json!({"status": "ok"}));
    assert!(api.get(&format!("/agents/{id}"), None).await.body["current_task"].is_null());

    for (path, field) in [
        (
            format!("/agents/{id}/session/set-task?task_id=abc&title=x"),
            "task_id",
        ),
        (format!("/agents/{id}/session/set-task?task_id=1"), "title"),
        (format!("/agents/{id}/session/track-file"), "file_path"),
    ] {
        let r = api.post(&path, None, &json!({})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(r.body["detail"][0]["loc"], json!(["query", field]));
    }
    let r = api
        .post(
            "/agents/999999/session/track-file?file_path=a",
            None,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A chat lease held elsewhere shows as processing and busy.
    client
        .execute("UPDATE agent.agents SET processing_by = 'edge-x', processing_until = now() + interval '1 minute', status = 'busy' WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(
        api.get(&format!("/agents/{id}/status"), None).await.body["is_processing"],
        true
    );
    assert_eq!(
        api.get(&format!("/agents/{id}"), None).await.body["status"],
        "busy"
    );
    // An expired lease (its edge died) does not.
    client
        .execute(
            "UPDATE agent.agents SET processing_until = now() - interval '1 minute' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        api.get(&format!("/agents/{id}"), None).await.body["status"],
        "idle"
    );

    edge.stop().await;
    auth.stop().await;
}
