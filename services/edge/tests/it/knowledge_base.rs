//! The knowledge base through a real edge: create, search by text with scopes, paging, list
//! and statistics.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_crud::{create_agent, open_edge};

#[tokio::test]
async fn knowledge_base_by_text_with_scopes_paging_and_stats() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();
    let client = db.pool(1).get().await.unwrap();
    let project: i64 = client
        .query_one(
            "INSERT INTO project.projects (name, local_path) VALUES ('p', '/tmp/p') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let add = |body: Value| {
        let api = api.clone();
        async move {
            let r = api.post("/memories/knowledge", None, &body).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["id"].as_i64().unwrap()
        }
    };
    let in_project = add(json!({"title": "Caching", "content": "Use Redis for sessions.", "category": "best_practice", "project_id": project})).await;
    let global = add(json!({"title": "Style", "content": "Prefer small sessions of work.", "is_global": true, "category": "docs"})).await;
    let plain = add(
        json!({"title": "Misc", "content": "Sessions expire after one hour.", "tags": ["auth"]}),
    )
    .await;

    let search = |body: Value| {
        let api = api.clone();
        async move {
            let r = api.post("/memories/knowledge/search", None, &body).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.body["method"], "text");
            let mut ids: Vec<i64> = r.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_i64().unwrap())
                .collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(
        search(json!({"query": "sessions"})).await,
        vec![in_project, global, plain]
    );
    assert_eq!(
        search(json!({"query": "sessions", "project_id": project})).await,
        vec![in_project, global]
    );
    assert_eq!(
        search(json!({"query": "sessions", "project_id": project, "include_global": false})).await,
        vec![in_project]
    );
    assert_eq!(
        search(json!({"query": "sessions", "include_global": false})).await,
        vec![in_project, plain]
    );
    assert_eq!(
        search(json!({"query": "sessions", "category": "docs"})).await,
        vec![global]
    );
    assert_eq!(search(json!({"query": "redis"})).await, vec![in_project]);
    // LIKE wildcards and quotes in the query are text, not pattern or SQL.
    assert_eq!(search(json!({"query": "%"})).await, Vec::<i64>::new());
    assert_eq!(
        search(json!({"query": "' OR 1=1 --"})).await,
        Vec::<i64>::new()
    );
    assert_eq!(search(json!({"query": "_"})).await, Vec::<i64>::new());

    for (body, field) in [
        (
            json!({"title": "x", "content": "y", "category": "gossip"}),
            "category",
        ),
        (json!({"title": "", "content": "y"}), "title"),
        (
            json!({"title": "x", "content": "y", "project_id": 999999}),
            "project_id",
        ),
    ] {
        let r = api.post("/memories/knowledge", None, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", field]));
    }
    let r = api
        .post(
            "/memories/knowledge?author_agent_id=999999",
            None,
            &json!({"title": "x", "content": "y"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let agent = create_agent(&api, "Ada").await;
    let r = api
        .post(
            &format!("/memories/knowledge?author_agent_id={agent}"),
            None,
            &json!({"title": "By Ada", "content": "z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let by_ada = r.body["id"].as_i64().unwrap();

    let r = api
        .get("/memories/knowledge?page=1&page_size=2", None)
        .await;
    assert_eq!(
        (
            r.body["total"].as_i64(),
            r.body["page"].as_i64(),
            r.body["page_size"].as_i64()
        ),
        (Some(4), Some(1), Some(2))
    );
    let page1: Vec<i64> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page1, vec![by_ada, plain], "newest first");
    let r = api
        .get("/memories/knowledge?page=3&page_size=2", None)
        .await;
    assert_eq!(
        (r.body["total"].as_i64(), r.body["entries"].clone()),
        (Some(4), json!([]))
    );
    let r = api.get("/memories/knowledge?category=docs", None).await;
    assert_eq!(r.body["total"], 1);
    for q in ["page=0", "page_size=101", "page=abc"] {
        assert_eq!(
            api.get(&format!("/memories/knowledge?{q}"), None)
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}"
        );
    }

    let r = api.get("/memories/knowledge/stats", None).await;
    assert_eq!(r.body["total_entries"], 4);
    assert_eq!(
        r.body["by_category"],
        json!({"best_practice": 1, "docs": 1, "uncategorized": 2})
    );
    let recent = r.body["recent_entries"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["id"], by_ada);
    assert_eq!(recent[1]["tags"], json!(["auth"]));

    edge.stop().await;
    auth.stop().await;
}
