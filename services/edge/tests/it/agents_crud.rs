//! `/agents` (contract §2.3, chat aside) through a real edge: agents persisted with persona and
//! model (the same rows `/agents-db` reads), partial updates, shared persona templates left
//! untouched, history, session, status, and skills kept consistent with per-agent enablement.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Auth, Edge, start_auth, start_edge};

pub async fn open_edge(db: &TestDb) -> (Auth, Edge) {
    let auth = start_auth(db, &[]).await;
    // Nothing listens there: no embeddings, text recall.
    let gateway = format!("http://127.0.0.1:{}", gathering_testkit::free_port());
    let edge = start_edge(
        db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("LLM_GATEWAY_URL", gateway.as_str()),
        ],
    )
    .await;
    (auth, edge)
}

pub async fn delete(api: &Api, path: &str) -> crate::support::Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

async fn patch(api: &Api, path: &str, body: &Value) -> crate::support::Reply {
    api.send(api.client.patch(format!("{}{path}", api.base)).json(body))
        .await
}

async fn put(api: &Api, path: &str, body: &Value) -> crate::support::Reply {
    api.send(api.client.put(format!("{}{path}", api.base)).json(body))
        .await
}

async fn scalar(db: &TestDb, sql: &str, id: i64) -> Option<String> {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query_one(sql, &[&id])
        .await
        .unwrap()
        .get(0)
}

pub async fn create_agent(api: &Api, name: &str) -> i64 {
    let r = api
        .post(
            "/agents",
            None,
            &json!({"persona": {"name": name, "role": "Backend developer"},
                    "config": {"provider": "openai", "model": "gpt-4o"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn agents_persist_and_are_the_rows_agents_db_reads() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    let r = api
        .post(
            "/agents",
            None,
            &json!({
                "persona": {"name": "Ada", "role": "Backend developer", "traits": ["precise"],
                            "specializations": ["rust", "sql"]},
                "config": {"provider": "OpenAI", "model": "gpt-4o", "temperature": 0.2,
                           "max_tokens": 2000, "competencies": ["rust"], "can_review": ["code"]}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let a = &r.body;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(
        (
            a["name"].as_str(),
            a["role"].as_str(),
            a["provider"].as_str(),
            a["model"].as_str(),
            a["status"].as_str()
        ),
        (
            Some("Ada"),
            Some("Backend developer"),
            Some("openai"),
            Some("gpt-4o"),
            Some("idle")
        )
    );
    assert_eq!(
        a["persona"],
        json!({"name": "Ada", "role": "Backend developer", "traits": ["precise"],
               "communication_style": "balanced", "specializations": ["rust", "sql"],
               "languages": ["fr", "en"]})
    );
    assert_eq!(
        a["config"],
        json!({"provider": "openai", "model": "gpt-4o", "max_tokens": 2000, "temperature": 0.2,
               "competencies": ["rust"], "can_review": ["code"]})
    );
    assert_eq!(
        (a["competencies"].clone(), a["can_review"].clone()),
        (json!(["rust"]), json!(["code"]))
    );
    assert_eq!(
        (
            a["session"].clone(),
            a["skills"].clone(),
            a["tools_count"].as_i64()
        ),
        (Value::Null, json!([]), Some(0))
    );
    assert!(a["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(a["current_task"].is_null());

    // Persisted: the same row through every read.
    let r = api.get("/agents", None).await;
    assert_eq!(
        (r.body["total"].as_i64(), r.body["agents"][0]["id"].as_i64()),
        (Some(1), Some(id))
    );
    assert!(
        r.body["agents"][0].get("persona").is_none(),
        "the list shows Agent, not AgentDetail"
    );
    let r = api.get(&format!("/agents/{id}"), None).await;
    assert_eq!(r.body["persona"]["traits"], json!(["precise"]));
    let r = api.get("/agents-db", None).await;
    let row = &r.body["agents"][0];
    assert_eq!(
        (
            row["id"].as_i64(),
            row["provider"].as_str(),
            row["model"].as_str(),
            row["persona_name"].as_str(),
            row["persona_role"].as_str()
        ),
        (
            Some(id),
            Some("openai"),
            Some("gpt-4o"),
            Some("Ada"),
            Some("Backend developer")
        )
    );
    let r = api.get(&format!("/agents-db/{id}"), None).await;
    assert_eq!(
        (
            r.body["temperature"].as_f64(),
            r.body["max_tokens"].as_i64(),
            r.body["specializations"].clone()
        ),
        (Some(0.2), Some(2000), json!(["rust", "sql"]))
    );
    assert_eq!(
        scalar(&db, "SELECT owner_agent_id::text FROM agent.personas p JOIN agent.agents a ON a.persona_id = p.id WHERE a.id = $1", id).await,
        Some(id.to_string()),
        "the persona is the agent's own"
    );

    // Defaults; a model found by alias; a model the catalogue lacks is added to its provider.
    let r = api
        .post(
            "/agents",
            None,
            &json!({"persona": {"name": "Def", "role": "helper"}}),
        )
        .await;
    assert_eq!(
        (
            r.body["config"]["provider"].as_str(),
            r.body["config"]["model"].as_str(),
            r.body["config"]["max_tokens"].as_i64(),
            r.body["config"]["temperature"].as_f64()
        ),
        (
            Some("anthropic"),
            Some("claude-sonnet-4-20250514"),
            Some(4096),
            Some(0.7)
        )
    );
    let r = api
        .post("/agents", None, &json!({"persona": {"name": "Al", "role": "r"}, "config": {"provider": "anthropic", "model": "claude-haiku-4-5"}}))
        .await;
    assert_eq!(r.body["model"], "claude-haiku-4-5-20251001");
    let r = api
        .post("/agents", None, &json!({"persona": {"name": "Neo", "role": "r"}, "config": {"provider": "openai", "model": "gpt-9-preview"}}))
        .await;
    assert_eq!(
        (r.status, r.body["model"].as_str()),
        (StatusCode::CREATED, Some("gpt-9-preview"))
    );
    let models = api.get("/models", None).await;
    assert!(
        models.body["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model_name"] == "gpt-9-preview" && m["provider_name"] == "openai")
    );

    // Bad input: 422 with the field's path, and no agent.
    let agents_before = api.get("/agents", None).await.body["total"].clone();
    for (body, loc) in [
        (
            json!({"persona": {"name": "X", "role": "r"}, "config": {"provider": "nope", "model": "m"}}),
            json!(["body", "config", "provider"]),
        ),
        (json!({"config": {}}), json!(["body", "persona"])),
        (
            json!({"persona": {"role": "r"}}),
            json!(["body", "persona", "name"]),
        ),
        (
            json!({"persona": {"name": "X", "role": "r"}, "config": {"temperature": 3}}),
            json!(["body", "config", "temperature"]),
        ),
        (
            json!({"persona": {"name": "", "role": "r"}}),
            json!(["body", "persona", "name"]),
        ),
        (
            json!({"persona": {"name": "X", "role": "r", "traits": ["a\u{0}b"]}}),
            json!(["body", "persona", "traits"]),
        ),
    ] {
        let r = api.post("/agents", None, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.body["detail"][0]["loc"], loc, "{body}");
    }
    assert_eq!(api.get("/agents", None).await.body["total"], agents_before);

    // Deleting takes its own persona with it.
    let persona_id = scalar(
        &db,
        "SELECT persona_id::text FROM agent.agents WHERE id = $1",
        id,
    )
    .await
    .unwrap();
    assert_eq!(
        delete(&api, &format!("/agents/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let r = api.get(&format!("/agents/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], format!("Agent {id} not found"));
    assert_eq!(
        delete(&api, &format!("/agents/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/agents-db/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api.get(&format!("/personas/{persona_id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn patch_merges_and_never_changes_a_shared_template() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let id = create_agent(&api, "Ada").await;
    let own_persona = scalar(
        &db,
        "SELECT persona_id::text FROM agent.agents WHERE id = $1",
        id,
    )
    .await;

    let r = patch(
        &api,
        &format!("/agents/{id}"),
        &json!({"persona": {"role": "Tech lead", "traits": ["calm"]}, "config": {"temperature": 1.1}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["name"].as_str(),
            r.body["role"].as_str(),
            r.body["persona"]["traits"].clone()
        ),
        (Some("Ada"), Some("Tech lead"), json!(["calm"]))
    );
    assert_eq!(
        (
            r.body["config"]["temperature"].as_f64(),
            r.body["model"].as_str(),
            r.body["config"]["max_tokens"].as_i64()
        ),
        (Some(1.1), Some("gpt-4o"), Some(4096))
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT persona_id::text FROM agent.agents WHERE id = $1",
            id
        )
        .await,
        own_persona,
        "its own persona changes in place"
    );
    let r = patch(
        &api,
        &format!("/agents/{id}"),
        &json!({"config": {"provider": "anthropic"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "config", "model"])
    );
    let r = patch(
        &api,
        &format!("/agents/{id}"),
        &json!({"config": {"provider": "anthropic", "model": "claude-opus-4-5"}}),
    )
    .await;
    assert_eq!(
        (r.body["provider"].as_str(), r.body["model"].as_str()),
        (Some("anthropic"), Some("claude-opus-4-5-20251101"))
    );
    let r = patch(
        &api,
        &format!("/agents/{id}"),
        &json!({"persona": {"name": "Ada Lovelace"}}),
    )
    .await;
    assert_eq!(
        (r.body["name"].as_str(), r.body["persona"]["name"].as_str()),
        (Some("Ada Lovelace"), Some("Ada Lovelace"))
    );
    let r = patch(
        &api,
        "/agents/999999",
        &json!({"config": {"temperature": 1}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Agent 999999 not found"))
    );
    let r = patch(
        &api,
        &format!("/agents/{id}"),
        &json!({"config": {"max_tokens": 0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A persona identical to a builtin template uses that template (its prompt included)...
    let personas = api.get("/personas", None).await;
    let tpl = personas.body["personas"][0].clone();
    let tpl_id = tpl["id"].as_i64().unwrap();
    let r = api
        .post(
            "/agents",
            None,
            &json!({"persona": {"name": tpl["display_name"], "role": tpl["role"], "traits": tpl["traits"],
                                "communication_style": tpl["communication_style"],
                                "specializations": tpl["specializations"], "languages": tpl["languages"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let twin = r.body["id"].as_i64().unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT persona_id::text FROM agent.agents WHERE id = $1",
            twin
        )
        .await,
        Some(tpl_id.to_string())
    );
    // ...and an edit gives the agent its own copy, leaving the template as it was.
    let r = patch(
        &api,
        &format!("/agents/{twin}"),
        &json!({"persona": {"traits": ["bold"]}}),
    )
    .await;
    assert_eq!(r.body["persona"]["traits"], json!(["bold"]));
    let after = api.get(&format!("/personas/{tpl_id}"), None).await;
    assert_eq!(after.body["traits"], tpl["traits"]);
    let copy = scalar(&db, "SELECT display_name || '|' || owner_agent_id || '|' || (base_prompt = (SELECT base_prompt FROM agent.personas WHERE id = (SELECT min(id) FROM agent.personas))) FROM agent.personas p WHERE p.id = (SELECT persona_id FROM agent.agents WHERE id = $1)", twin).await;
    assert_eq!(
        copy,
        Some(format!(
            "{} (agent {twin})|{twin}|true",
            tpl["display_name"].as_str().unwrap()
        )),
        "the copy is named apart from the template and keeps its prompt"
    );
    // A second agent with a taken name still gets a persona of its own.
    let other = create_agent(&api, "Ada Lovelace").await;
    assert_eq!(
        scalar(&db, "SELECT p.display_name FROM agent.personas p JOIN agent.agents a ON a.persona_id = p.id WHERE a.id = $1", other).await,
        Some(format!("Ada Lovelace (agent {other})"))
    );

    edge.stop().await;
    auth.stop().await;
}

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

#[tokio::test]
async fn a_list_of_many_agents_is_complete() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(create_agent(&api, &format!("agent-{i}")).await);
    }
    api.post(&format!("/agents/{}/skills/git", ids[3]), None, &json!({}))
        .await;
    let r = api.get("/agents", None).await;
    let listed: Vec<i64> = r.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert!(
        r.body["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["model"] == "gpt-4o" && a["role"] == "Backend developer")
    );
    assert_eq!(api.get("/agents-db", None).await.body["total"], 25);
    edge.stop().await;
    auth.stop().await;
}
