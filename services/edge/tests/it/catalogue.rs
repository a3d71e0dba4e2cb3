//! The catalogue (contract §2.4) through a real edge: providers, models, personas and
//! `/agents-db`, their shapes, orderings, status codes and kept quirks, and that bad or
//! injection-shaped input changes nothing.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, start_auth, start_edge};

async fn open_edge(db: &TestDb) -> (crate::support::Auth, crate::support::Edge) {
    let auth = start_auth(db, &[]).await;
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

async fn delete(api: &Api, path: &str) -> crate::support::Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

async fn patch(api: &Api, path: &str, body: &Value) -> crate::support::Reply {
    api.send(api.client.patch(format!("{}{path}", api.base)).json(body))
        .await
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn providers_round_trip_with_the_contracts_quirks() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    let r = api.get("/providers", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 4);
    let seeded = &r.body["providers"];
    let mut sorted = ids(seeded);
    sorted.sort_unstable();
    assert_eq!(ids(seeded), sorted, "ordered by id");
    let anthropic = &seeded[0];
    assert_eq!(anthropic["name"], "anthropic");
    assert!(anthropic["model_count"].as_i64().unwrap() >= 5);
    assert!(
        anthropic["created_at"]
            .as_str()
            .unwrap()
            .ends_with("+00:00"),
        "isoformat timestamps: {anthropic}"
    );
    for key in [
        "id",
        "name",
        "api_base_url",
        "is_local",
        "created_at",
        "model_count",
    ] {
        assert!(anthropic.get(key).is_some(), "{key} missing: {anthropic}");
    }

    let r = api
        .post(
            "/providers",
            None,
            &json!({"name": "  MyLab ", "api_base_url": "https://llm.example.com/v1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["name"], "mylab", "stored lower-cased");
    assert_eq!(
        (r.body["is_local"].as_bool(), r.body["model_count"].as_i64()),
        (Some(false), Some(0))
    );
    let id = r.body["id"].as_i64().unwrap();

    let dup = api
        .post("/providers", None, &json!({"name": "MYLAB"}))
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert_eq!(dup.body["detail"], "Provider with this name already exists");

    for (body, field) in [
        (json!({"name": "a/b"}), "name"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "ok", "api_base_url": "ftp://x"}),
            "api_base_url",
        ),
        (json!({"name": "ok", "api_type": "grpc"}), "api_type"),
    ] {
        let r = api.post("/providers", None, &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", field]),
            "{:?}",
            r.body
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM agent.providers").await, 5);

    let r = api.get(&format!("/providers/{id}"), None).await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("mylab"))
    );
    let r = api.get("/providers/999999", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["detail"], "Provider not found");
    let r = api.get("/providers/abc", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // 204 whether or not something was deleted.
    assert_eq!(
        delete(&api, &format!("/providers/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&api, &format!("/providers/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&api, "/providers/999999").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/providers/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );

    // Served under /api too.
    let r = api.get("/api/providers", None).await;
    assert_eq!(
        (r.status, r.body["total"].as_i64()),
        (StatusCode::OK, Some(4))
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn models_round_trip_ordering_and_errors() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    let all = api.get("/models", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let models = all.body["models"].as_array().unwrap();
    assert_eq!(all.body["total"].as_u64().unwrap() as usize, models.len());
    assert!(
        models.iter().all(|m| m["is_deprecated"] == false),
        "deprecated hidden"
    );
    let keys: Vec<(String, String)> = models
        .iter()
        .map(|m| {
            (
                m["provider_name"].as_str().unwrap().to_owned(),
                m["model_alias"].as_str().unwrap_or("\u{10ffff}").to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by provider name, then model_alias");
    let with_deprecated = api.get("/models?include_deprecated=true", None).await;
    assert!(with_deprecated.body["total"].as_u64() > all.body["total"].as_u64());
    let sonnet = models
        .iter()
        .find(|m| m["model_name"] == "claude-sonnet-4-20250514")
        .unwrap();
    assert_eq!(sonnet["pricing_in"], 3.0);
    assert_eq!(sonnet["release_date"], "2025-05-22");

    let provider = api
        .post(
            "/providers",
            None,
            &json!({"name": "lab", "is_local": true}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let r = api
        .post(
            "/models",
            None,
            &json!({"provider_id": provider, "model_name": "lab-1", "model_alias": "lab-one",
                    "pricing_in": 1.5, "pricing_out": 0.125, "context_window": 8192,
                    "release_date": "2025-01-02"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let model = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["provider_name"], "lab");
    assert_eq!(
        (
            r.body["pricing_in"].as_f64(),
            r.body["pricing_out"].as_f64()
        ),
        (Some(1.5), Some(0.125))
    );
    assert_eq!(
        (
            r.body["function_calling"].as_bool(),
            r.body["streaming"].as_bool(),
            r.body["vision"].as_bool()
        ),
        (Some(true), Some(true), Some(false)),
        "defaults"
    );
    assert_eq!(r.body["release_date"], "2025-01-02");
    assert!(r.body["updated_at"].is_string());

    let r = api
        .get(&format!("/models?provider_id={provider}"), None)
        .await;
    assert_eq!(ids(&r.body["models"]), vec![model]);

    for (body, status) in [
        (
            json!({"provider_id": 999999, "model_name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"provider_id": provider, "model_name": "lab-1"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"provider_id": provider, "model_name": "x", "model_alias": "lab-one"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"provider_id": provider, "model_name": "x", "pricing_in": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider_id": provider, "model_name": "x", "release_date": "May 5"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider_id": provider}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = api.post("/models", None, &body).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    let r = api
        .post(
            "/models",
            None,
            &json!({"provider_id": 999999, "model_name": "x"}),
        )
        .await;
    assert_eq!(r.body["detail"], "Provider not found");
    assert_eq!(
        count(&db, "SELECT count(*) FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id WHERE p.name = 'lab'").await,
        1
    );

    let r = patch(
        &api,
        &format!("/models/{model}"),
        &json!({"pricing_out": 2.0, "is_deprecated": true, "model_alias": null}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["model_alias"].as_str(),
            r.body["pricing_out"].as_f64(),
            r.body["is_deprecated"].as_bool()
        ),
        (Some("lab-one"), Some(2.0), Some(true)),
        "null fields are left alone"
    );
    let r = api
        .get(&format!("/models?provider_id={provider}"), None)
        .await;
    assert_eq!(r.body["total"], 0, "deprecated now");
    let r = patch(&api, "/models/999999", &json!({"pricing_in": 1})).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Model not found"))
    );

    assert_eq!(
        delete(&api, &format!("/models/{model}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&api, &format!("/models/{model}")).await.status,
        StatusCode::NO_CONTENT
    );
    let r = api.get(&format!("/models/{model}"), None).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Model not found"))
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn personas_round_trip_and_builtins_stay() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    let r = api.get("/personas", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 4);
    let builtin = r.body["personas"][0].clone();
    assert_eq!(builtin["is_builtin"], true);
    assert!(builtin.get("default_model_alias").is_some());
    let mut sorted = ids(&r.body["personas"]);
    sorted.sort_unstable();
    assert_eq!(ids(&r.body["personas"]), sorted);

    let r = api
        .post(
            "/personas",
            None,
            &json!({"display_name": "Reviewer Rex", "role": "Code reviewer", "traits": ["strict"],
                    "motto": "Ship it right"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (
            r.body["communication_style"].as_str(),
            r.body["languages"].clone(),
            r.body["is_builtin"].as_bool()
        ),
        (Some("balanced"), json!([]), Some(false))
    );
    assert_eq!(r.body["base_prompt"], "");

    let dup = api
        .post(
            "/personas",
            None,
            &json!({"display_name": "Reviewer Rex", "role": "x"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    let bad = api
        .post(
            "/personas",
            None,
            &json!({"display_name": "Zed", "role": "x", "default_model_id": 999999}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["detail"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Model not found"))
    );
    let bad = api
        .post(
            "/personas",
            None,
            &json!({"display_name": "Nul\u{0}Byte", "role": "x"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&db, "SELECT count(*) FROM agent.personas").await, 5);

    let r = patch(
        &api,
        &format!("/personas/{id}"),
        &json!({"role": "Lead reviewer", "traits": null, "languages": ["en"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["role"].as_str(),
            r.body["traits"].clone(),
            r.body["languages"].clone()
        ),
        (Some("Lead reviewer"), json!(["strict"]), json!(["en"]))
    );
    let r = patch(&api, "/personas/999999", &json!({"role": "x"})).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Persona not found"))
    );
    let r = api.get(&format!("/personas/{id}"), None).await;
    assert_eq!(r.body["role"], "Lead reviewer");

    let builtin_id = builtin["id"].as_i64().unwrap();
    let r = delete(&api, &format!("/personas/{builtin_id}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["detail"], "Cannot delete builtin persona");
    assert_eq!(
        api.get(&format!("/personas/{builtin_id}"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        delete(&api, &format!("/personas/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&api, &format!("/personas/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/personas/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn agents_db_reads_the_views() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let client = db.pool(1).get().await.unwrap();
    let agent: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, persona_id, model_id, temperature) VALUES ('Nova', \
                 (SELECT id FROM agent.personas ORDER BY id LIMIT 1), \
                 (SELECT id FROM agent.models WHERE model_name = 'gpt-4o'), 0.3) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO memory.memories (agent_id, scope, scope_id, key, value) VALUES ($1, 'agent', $1, 'k', 'v')",
            &[&agent],
        )
        .await
        .unwrap();

    let r = api.get("/agents-db", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 1);
    let row = &r.body["agents"][0];
    assert_eq!(
        (
            row["name"].as_str(),
            row["provider"].as_str(),
            row["model"].as_str(),
            row["memory_count"].as_i64()
        ),
        (Some("Nova"), Some("openai"), Some("gpt-4o"), Some(1))
    );
    assert_eq!(row["persona_name"], "Architecte");

    let r = api.get(&format!("/agents-db/{agent}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(
        (b["model_name"].as_str(), b["provider_name"].as_str()),
        (Some("gpt-4o"), Some("openai"))
    );
    assert_eq!(
        (b["temperature"].as_f64(), b["max_tokens"].as_i64()),
        (Some(0.3), Some(16384))
    );
    assert!(b["system_prompt"].as_str().unwrap().len() > 100);
    assert_eq!(
        (b["pricing_in"].as_f64(), b["memory_count"].as_i64()),
        (Some(2.5), Some(1))
    );
    for key in [
        "context_window",
        "vision",
        "circle_count",
        "message_count",
        "review_strictness",
        "traits",
    ] {
        assert!(b.get(key).is_some(), "{key} missing");
    }
    let r = api.get("/agents-db/999999", None).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Agent not found"))
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn catalogue_needs_a_token() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    for path in [
        "/providers",
        "/models",
        "/personas",
        "/agents-db",
        "/agents",
        "/memories/knowledge",
    ] {
        let r = api.get(path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (token, _) = api.user("cat@example.com", "correct horse battery").await;
    let r = api.get("/providers", Some(&token)).await;
    assert_eq!(
        (r.status, r.body["total"].as_i64()),
        (StatusCode::OK, Some(4))
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn injection_shaped_input_changes_nothing() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname IN ('agent', 'memory')";
    let before = count(&db, tables).await;

    let r = api
        .post(
            "/providers",
            None,
            &json!({"name": "x'; DROP TABLE agent.agents; --"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Stored literally where such text is allowed.
    let evil = "Robert'); DROP TABLE agent.personas;--";
    let r = api
        .post(
            "/personas",
            None,
            &json!({"display_name": evil, "role": "' OR '1'='1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api.get(&format!("/personas/{}", r.body["id"]), None).await;
    assert_eq!(
        (r.body["display_name"].as_str(), r.body["role"].as_str()),
        (Some(evil), Some("' OR '1'='1"))
    );
    let r = api.get("/models?provider_id=1%20OR%201=1", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = api
        .get("/personas/1;DELETE FROM agent.personas", None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(count(&db, tables).await, before);
    assert_eq!(count(&db, "SELECT count(*) FROM agent.personas").await, 5);
    assert_eq!(count(&db, "SELECT count(*) FROM agent.providers").await, 4);
    edge.stop().await;
    auth.stop().await;
}
