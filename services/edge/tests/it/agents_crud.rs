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

pub(crate) async fn put(api: &Api, path: &str, body: &Value) -> crate::support::Reply {
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
