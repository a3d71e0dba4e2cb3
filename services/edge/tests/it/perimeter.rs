//! The perimeter as an ordinary registered user (untrusted by design) tries to cross it: each
//! test is an attack that worked against the earlier build, and must now change nothing.

use std::time::Duration;

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, eventually, start_auth, start_edge, start_edge_at};

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

async fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> crate::support::Reply {
    let mut req = api
        .client
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    api.send(req).await
}

#[tokio::test]
async fn an_ordinary_user_cannot_change_the_catalogue() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (token, _) = api.user("mallory@example.com", "long enough pw").await;
    let openai: i64 = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT id FROM agent.providers WHERE name = 'openai'", &[])
        .await
        .unwrap()
        .get(0);
    let model: i64 = count(&db, "SELECT min(id) FROM agent.models").await;
    let providers = count(&db, "SELECT count(*) FROM agent.providers").await;
    let models = count(&db, "SELECT count(*) FROM agent.models").await;

    use reqwest::Method;
    let attempts = [
        (Method::DELETE, format!("/providers/{openai}"), None),
        (
            Method::POST,
            "/providers".to_owned(),
            Some(json!({"name": "evil", "api_base_url": "http://attacker.example"})),
        ),
        (Method::DELETE, format!("/api/models/{model}"), None),
        (
            Method::POST,
            "/models".to_owned(),
            Some(json!({"provider_id": openai, "model_name": "x"})),
        ),
        (
            Method::PATCH,
            format!("/models/{model}"),
            Some(json!({"pricing_in": 0})),
        ),
        (
            Method::PATCH,
            "/settings/providers/openai".to_owned(),
            Some(json!({"base_url": "http://attacker.example"})),
        ),
    ];
    for (method, path, body) in attempts {
        let r = send(&api, method.clone(), &path, &token, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
        assert_eq!(r.body["detail"], "Admin access required");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM agent.providers").await,
        providers
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM agent.models").await,
        models
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM agent.provider_settings").await,
        0
    );
    // Reading stays open.
    let r = api.get("/providers", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.get("/models", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn closed_registration_answers_403_through_the_edge() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[("GATHERING_REGISTRATION", "closed")]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let r = edge
        .api()
        .register("new@example.com", "long enough pw")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("closed"));
    assert_eq!(count(&db, "SELECT count(*) FROM auth.users").await, 0);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn tokens_work_as_soon_as_auth_is_up_whatever_the_start_order() {
    let db = TestDb::new().await;
    let port = gathering_testkit::free_port();
    let auth_url = format!("http://127.0.0.1:{port}");
    // The edge first, as `gathering up` may start it: not ready, and says why.
    let edge = start_edge_at(&db, &auth_url, &[]).await;
    let api = edge.api();
    let r = api.get("/health/ready", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["reason"], "starting");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let addr = format!("127.0.0.1:{port}");
    let auth = start_auth(&db, &[("AUTH_ADDR", addr.as_str())]).await;
    // Ready shortly after auth answers (the back-off starts at 100 ms, ±20 %, capped at 5 s).
    assert!(
        eventually(10, || async {
            api.get("/health/ready", None).await.status == StatusCode::OK
        })
        .await
    );
    // The very first token is accepted: no window of 401s.
    let (token, _) = api.user("early@example.com", "long enough pw").await;
    let r = api.get("/auth/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn projects_are_confined_to_the_project_roots() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let root = std::env::temp_dir().join(format!("gt-roots-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(root.join("mine")).unwrap();
    let roots = root.display().to_string();
    let edge = start_edge(&db, &auth, &[("GATHERING_PROJECT_ROOTS", roots.as_str())]).await;
    let api = edge.api();
    let (token, _) = api.user("mallory@example.com", "long enough pw").await;
    for outside in ["/usr/share", "/etc", "/", "/tmp"] {
        let r = api
            .post(
                "/projects",
                Some(&token),
                &json!({"name": "grab", "path": outside, "auto_detect": false}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{outside}: {:?}", r.body);
    }
    // A symlink inside the root pointing out of it is resolved, and refused.
    std::os::unix::fs::symlink("/usr/share", root.join("escape")).unwrap();
    let escape = root.join("escape").display().to_string();
    let r = api
        .post(
            "/projects",
            Some(&token),
            &json!({"name": "grab", "path": escape, "auto_detect": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("outside the project roots"),
        "{:?}",
        r.body
    );
    assert_eq!(count(&db, "SELECT count(*) FROM project.projects").await, 0);
    let inside = root.join("mine").display().to_string();
    let r = api
        .post(
            "/projects",
            Some(&token),
            &json!({"name": "mine", "path": inside, "auto_detect": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // The folder browser stays inside the roots too.
    let r = api
        .get("/projects/browse/folders?path=/usr", Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = api.get("/projects/browse/folders", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["parent_path"], Value::Null);
    // A project registered outside the roots (before they were set) is refused on use.
    let stale: i64 = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO project.projects (name, local_path) VALUES ('stale', '/usr/share') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = api
        .post(
            "/tools/execute",
            Some(&token),
            &json!({"tool": "fs_list", "input": {"path": "."}, "project_id": stale}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let _ = std::fs::remove_dir_all(&root);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_pipeline_action_that_does_not_exist_is_refused_at_create_and_validate() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (token, _) = api.user("ann@example.com", "long enough pw").await;
    let nodes = json!([
        {"id": "t", "type": "trigger", "name": "Start"},
        {"id": "boom", "type": "action", "name": "Boom", "config": {"action": "launch_rockets"}},
        {"id": "quiet", "type": "action", "name": "Quiet", "config": {}},
    ]);
    let edges = json!([{"from": "t", "to": "boom"}, {"from": "boom", "to": "quiet"}]);
    let r = api
        .post(
            "/pipelines",
            Some(&token),
            &json!({"name": "p", "status": "active", "nodes": nodes, "edges": edges}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let text = r.body.to_string();
    assert!(
        text.contains("'boom'") && text.contains("launch_rockets"),
        "{text}"
    );
    assert!(
        text.contains("'quiet'") && text.contains("missing required config key 'action'"),
        "{text}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM circle.pipelines").await, 0);
    // An editor's draft may be saved empty, then validated once filled in.
    let r = api
        .post(
            "/pipelines",
            Some(&token),
            &json!({"name": "draft", "status": "draft", "nodes": [], "edges": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    edge.stop().await;
    auth.stop().await;
}

/// Waits, if needed, so the next few seconds stay inside one rate-limit window (windows are
/// whole minutes of the database clock, which is this machine's).
async fn inside_one_window() {
    use chrono::Timelike;
    let second = chrono::Utc::now().second();
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

#[tokio::test]
async fn the_low_rate_tiers_hold_across_three_edges() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let limits = [
        ("RATE_LIMIT_AUTH_PER_MINUTE", "5"),
        ("RATE_LIMIT_WRITE_PER_MINUTE", "4"),
        ("RATE_LIMIT_ENABLED", "true"),
    ];
    let mut edges = Vec::new();
    for _ in 0..3 {
        edges.push(start_edge(&db, &auth, &limits).await);
    }
    let apis: Vec<Api> = edges.iter().map(|e| e.api()).collect();
    inside_one_window().await;
    // Logins: 5 per minute per client in total, whichever edge answers.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = apis[i % 3]
            .login("nobody@example.com", "wrong password")
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        statuses,
        vec![401, 401, 401, 401, 401, 429, 429, 429],
        "{statuses:?}"
    );
    // Writes: 4 per minute per client and endpoint in total.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = apis[(i + 1) % 3].post("/agents", None, &json!({})).await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.contains_key("retry-after"));
            assert_eq!(r.headers["x-ratelimit-limit"], "4");
            assert_eq!(r.body["error"], "Rate limit exceeded: 4 per 1 minute");
        }
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 429, 429], "{statuses:?}");
    // Reads stay per instance and are not affected.
    assert_eq!(apis[0].get("/health", None).await.status, StatusCode::OK);
    for e in edges {
        e.stop().await;
    }
    auth.stop().await;
}
