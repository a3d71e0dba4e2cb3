//! `/tools` through a real edge: the catalogue, per-agent enablement, and `POST /tools/execute`
//! (validation → 422 by JSON path, permissions, confirmation, confinement, SSRF guard,
//! webhooks to a local receiver allow-listed through the edge's configuration).

use std::sync::{Arc, Mutex};

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::projects::TempDir;
use crate::support::{start_auth, start_edge};

#[tokio::test]
async fn catalogue_and_agent_enablement() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();

    let r = api.get("/tools", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let fs_read = r.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fs_read")
        .unwrap()
        .clone();
    assert_eq!(fs_read["input_schema"]["required"], json!(["path"]));
    assert_eq!(
        (fs_read["skill"].as_str(), fs_read["category"].as_str()),
        (Some("filesystem"), Some("filesystem"))
    );
    let r = api.get("/tools?category=version_control", None).await;
    assert_eq!(r.body["total"], 10);
    assert_eq!(
        api.get("/tools?category=nope", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = api.get("/tools/stats", None).await;
    assert!(
        r.body["total_tools"].as_u64().unwrap() >= 60,
        "{:?}",
        r.body
    );

    let r = api.get("/tools/skills", None).await;
    let skills = r.body.as_array().unwrap();
    // The 25 families with tools behind them (V110 unlisted the five without, V116 listed
    // calendar again, V130 email and cloud).
    assert_eq!(skills.len(), 25);
    let count = |name: &str| {
        skills.iter().find(|s| s["name"] == name).unwrap()["tools_count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (count("filesystem"), count("git"), count("ai")),
        (10, 10, 6)
    );
    assert_eq!((count("email"), count("cloud")), (4, 4));
    let r = api.get("/tools/skills?category=gathering", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 6);
    let r = api.get("/tools/skills/categories", None).await;
    assert_eq!(r.body["web"], 3);

    let client = db.pool(1).get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('coder') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = api.get(&format!("/tools/agents/{agent}"), None).await;
    assert_eq!(
        (
            r.body["agent_name"].as_str(),
            r.body["enabled_count"].as_u64(),
            r.body["total_count"].as_u64()
        ),
        (Some("coder"), Some(0), Some(25))
    );
    assert_eq!(
        api.get("/tools/agents/999999", None).await.status,
        StatusCode::NOT_FOUND
    );

    let patch = |skill: &str, on: bool| {
        api.client
            .patch(format!("{}/tools/agents/{agent}/skills/{skill}", api.base))
            .json(&json!({"is_enabled": on}))
    };
    let r = api.send(patch("git", true)).await;
    assert_eq!(
        (r.status, r.body["is_enabled"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{:?}",
        r.body
    );
    assert_eq!(
        api.send(patch("no-such-skill", true)).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = api
        .client
        .patch(format!("{}/tools/agents/{agent}/skills/git", api.base))
        .json(&json!({"is_enabled": "yes"}));
    assert_eq!(api.send(bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .post(
            &format!("/tools/agents/{agent}/skills/bulk"),
            None,
            &json!({"skill_names": ["http", "web", "nope"], "is_enabled": true}),
        )
        .await;
    assert_eq!(r.body["updated_count"], 2);
    let r = api
        .post(
            &format!("/tools/agents/{agent}/skills/enable-all?category=gathering"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(
        (
            r.body["enabled_count"].as_u64(),
            r.body["category"].as_str()
        ),
        (Some(6), Some("gathering"))
    );
    let r = api
        .get(&format!("/tools/agents/{agent}/enabled"), None)
        .await;
    assert_eq!(r.body["enabled_skills"].as_array().unwrap().len(), 9);
    let r = api
        .post(
            &format!("/tools/agents/{agent}/skills/disable-all"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .get(&format!("/tools/agents/{agent}/enabled"), None)
        .await;
    assert_eq!(r.body["enabled_skills"], json!([]));
    assert_eq!(
        api.post("/tools/agents/999999/skills/enable-all", None, &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn execute_validates_checks_and_answers_a_skill_response() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let dir = TempDir::new();
    dir.write("hello.txt", "hi there");
    let outside = TempDir::new();
    outside.write("secret.txt", "top secret");
    let r = api
        .post("/projects", None, &json!({"name": "p", "path": dir.str()}))
        .await;
    let project = r.body["id"].as_i64().unwrap();
    let exec = |body: Value| {
        let api = api.clone();
        async move { api.post("/tools/execute", None, &body).await }
    };

    let r = exec(json!({"tool": "fs_read", "project_id": project, "input": {"path": "hello.txt"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["success"].as_bool(),
            r.body["data"]["content"].as_str()
        ),
        (Some(true), Some("hi there"))
    );
    for key in [
        "message",
        "error",
        "needs_confirmation",
        "confirmation_type",
        "skill_name",
        "tool_name",
        "duration_ms",
        "timestamp",
    ] {
        assert!(
            r.body.get(key).is_some(),
            "SkillResponse has {key}: {:?}",
            r.body
        );
    }
    assert_eq!(
        (r.body["skill_name"].as_str(), r.body["tool_name"].as_str()),
        (Some("filesystem"), Some("fs_read"))
    );

    let r = exec(json!({"tool": "nope", "input": {}})).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("Tool 'nope' not found in registry")
        )
    );
    let r = exec(
        json!({"tool": "fs_read", "project_id": project, "input": {"path": 5, "extra": true}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let mut locs: Vec<Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!([d["loc"], d["type"]]))
        .collect();
    locs.sort_by_key(|v| v.to_string());
    assert_eq!(
        locs,
        vec![
            json!([["body", "input", "extra"], "additionalProperties"]),
            json!([["body", "input", "path"], "type"])
        ]
    );
    let r = exec(json!({"tool": "fs_read", "project_id": project})).await;
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "input", "path"]),
        "missing input is an empty object"
    );
    let r = exec(json!({"tool": "fs_read", "project_id": 999999, "input": {"path": "x"}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = exec(json!({"tool": "fs_read", "input": {"path": "x"}, "bogus": 1})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Confinement: the answer is a refusal, and nothing outside is read.
    let rel = format!(
        "../{}/secret.txt",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for path in [rel.as_str(), "/etc/passwd", "%2e%2e/secret.txt"] {
        let r =
            exec(json!({"tool": "fs_read", "project_id": project, "input": {"path": path}})).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::OK, Some("refused")),
            "{path}: {:?}",
            r.body
        );
        assert!(!r.body.to_string().contains("top secret"));
    }

    // A dangerous tool waits for confirmation.
    let r =
        exec(json!({"tool": "fs_delete", "project_id": project, "input": {"path": "hello.txt"}}))
            .await;
    assert_eq!(
        (
            r.body["needs_confirmation"].as_bool(),
            r.body["confirmation_type"].as_str()
        ),
        (Some(true), Some("destructive"))
    );
    assert!(dir.path().join("hello.txt").exists());
    let r = exec(json!({"tool": "fs_delete", "project_id": project, "confirmed": true, "input": {"path": "hello.txt"}})).await;
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    assert!(!dir.path().join("hello.txt").exists());

    // The request can narrow its permissions, never widen them.
    let r = exec(json!({"tool": "fs_write", "project_id": project, "permissions": ["read"], "input": {"path": "x.txt", "content": "x"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(!dir.path().join("x.txt").exists());
    let r = exec(json!({"tool": "fs_write", "project_id": project, "permissions": ["fly"], "input": {"path": "x.txt", "content": "x"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // On behalf of an agent, the skill must be enabled for it.
    let client = db.pool(1).get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('a') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let body = json!({"tool": "fs_write", "agent_id": agent, "project_id": project, "input": {"path": "by-agent.txt", "content": "x"}});
    let r = exec(body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(
        r.body["detail"],
        format!("Skill 'filesystem' is not enabled for agent {agent}")
    );
    api.post(
        &format!("/tools/agents/{agent}/skills/bulk"),
        None,
        &json!({"skill_names": ["filesystem"], "is_enabled": true}),
    )
    .await;
    let r = exec(body).await;
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    let r = api.get(&format!("/tools/agents/{agent}"), None).await;
    let fs = r.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["skill_name"] == "filesystem")
        .unwrap()
        .clone();
    assert_eq!(fs["usage_count"], 1);
    assert_eq!(
        exec(json!({"tool": "fs_read", "agent_id": 999999, "input": {"path": "x"}}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Outbound requests go through the SSRF guard (nothing allow-listed here).
    for url in [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/",
    ] {
        let r = exec(json!({"tool": "http_get", "input": {"url": url}})).await;
        assert_eq!(r.body["error"], "refused", "{url}: {:?}", r.body);
    }
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_users_grants_come_from_the_configuration() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("GATHERING_TOOL_GRANTS", "read")]).await;
    let api = edge.api();
    let (token, _) = api.user("tools@example.com", "correct horse battery").await;
    let r = api
        .post(
            "/tools/execute",
            Some(&token),
            &json!({"tool": "build_url", "input": {"base": "https://a.example", "path": "x"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["data"]["url"].as_str()),
        (StatusCode::OK, Some("https://a.example/x")),
        "{:?}",
        r.body
    );
    let r = api
        .post(
            "/tools/execute",
            Some(&token),
            &json!({"tool": "http_get", "input": {"url": "https://a.example/"}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "network is not granted: {:?}",
        r.body
    );
    edge.stop().await;
    auth.stop().await;
}

/// A minimal HTTP receiver on 127.0.0.1: records each request body, answers 200.
async fn receiver() -> (u16, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = &text[..end];
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                            let body = serde_json::from_slice(&buf[end + 4..end + 4 + len])
                                .unwrap_or(Value::Null);
                            s.lock().unwrap().push((path, body));
                            let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn webhooks_reach_a_local_receiver_allow_listed_in_the_config() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1"),
        ],
    )
    .await;
    let api = edge.api();
    let (port, seen) = receiver().await;
    let r = api
        .post("/tools/execute", None, &json!({"tool": "notify_slack", "input": {"webhook_url": format!("http://127.0.0.1:{port}/slack"), "text": "deployed", "channel": "#ops"}}))
        .await;
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    let r = api
        .post("/tools/execute", None, &json!({"tool": "notify_webhook", "input": {"url": format!("http://127.0.0.1:{port}/hook"), "payload": {"a": [1, 2]}}}))
        .await;
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (
                "/slack".to_owned(),
                json!({"text": "deployed", "channel": "#ops"})
            ),
            ("/hook".to_owned(), json!({"a": [1, 2]}))
        ]
    );
    edge.stop().await;
    auth.stop().await;
}
