//! `/projects` through a real edge (no-auth development mode) over a fresh database.

use std::path::{Path, PathBuf};

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{start_auth, start_edge};

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("gt-edge-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(std::fs::canonicalize(p).unwrap())
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn project_crud_detection_circles_and_context() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let dir = TempDir::new();
    dir.write(
        "Cargo.toml",
        "[package]\nname = \"crab\"\n\n[dependencies]\naxum = \"0.8\"\n",
    );
    dir.write(".git/HEAD", "ref: refs/heads/trunk\n");

    let r = api
        .post(
            "/projects",
            None,
            &json!({"name": "My Crab", "path": dir.str(), "description": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (r.body["name"].as_str(), r.body["display_name"].as_str()),
        (Some("crab"), Some("My Crab"))
    );
    assert_eq!(
        (r.body["path"].as_str(), r.body["branch"].as_str()),
        (Some(dir.str()), Some("trunk"))
    );
    assert_eq!(r.body["languages"], json!(["rust"]));
    assert_eq!(r.body["commands"]["test"], "cargo test");
    assert_eq!(r.body["circle_count"], 0);

    let dup = api
        .post(
            "/projects",
            None,
            &json!({"name": "again", "path": dir.str()}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{:?}", dup.body);
    let file = dir.path().join("Cargo.toml");
    for (path, code) in [
        (file.to_str().unwrap(), StatusCode::BAD_REQUEST),
        ("/no/such/folder", StatusCode::BAD_REQUEST),
        ("relative/x", StatusCode::BAD_REQUEST),
        ("/", StatusCode::BAD_REQUEST),
        ("/proc", StatusCode::BAD_REQUEST),
    ] {
        let r = api
            .post("/projects", None, &json!({"name": "x", "path": path}))
            .await;
        assert_eq!(r.status, code, "{path}: {:?}", r.body);
    }
    let r = api
        .post("/projects", None, &json!({"name": "", "path": dir.str()}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "name"]));
    let r = api.post("/projects", None, &json!({"name": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = api.get(&format!("/api/projects/{id}"), None).await;
    assert_eq!(
        (r.status, r.body["id"].as_i64()),
        (StatusCode::OK, Some(id))
    );
    let r = api.get("/projects/999999", None).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Project 999999 not found"))
    );
    let r = api.get("/projects/abc", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let patch = api
        .client
        .patch(format!("{}/projects/{id}", api.base))
        .json(&json!({"description": "new", "notes": ["n1"], "status": "paused"}));
    let r = api.send(patch).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["description"].as_str(), r.body["status"].as_str()),
        (Some("new"), Some("paused"))
    );
    let bad = api
        .client
        .patch(format!("{}/projects/{id}", api.base))
        .json(&json!({"bogus": 1}));
    assert_eq!(api.send(bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = api
        .client
        .patch(format!("{}/projects/{id}", api.base))
        .json(&json!({"tools": [1]}));
    assert_eq!(api.send(bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = api.get("/projects?status=paused", None).await;
    assert_eq!(r.body["total"], 1);
    let r = api.get("/projects?status=active", None).await;
    assert_eq!(r.body["total"], 0);

    let client = db.pool(1).get().await.unwrap();
    let circle: i64 = client
        .query_one(
            "INSERT INTO circle.circles (name) VALUES ('core') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = api
        .post(
            &format!("/projects/{id}/circles/{circle}?is_primary=true"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::CREATED, Some("linked")),
        "{:?}",
        r.body
    );
    let r = api
        .post(
            &format!("/projects/{id}/circles/{circle}"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "already_linked");
    let r = api
        .post(&format!("/projects/{id}/circles/424242"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.get(&format!("/projects/{id}/circles"), None).await;
    assert_eq!(
        (
            r.body["total"].as_u64(),
            r.body["circles"][0]["circle_name"].as_str()
        ),
        (Some(1), Some("core"))
    );
    let del = api
        .client
        .delete(format!("{}/projects/{id}/circles/{circle}", api.base));
    assert_eq!(api.send(del).await.status, StatusCode::NO_CONTENT);
    let del = api
        .client
        .delete(format!("{}/projects/{id}/circles/{circle}", api.base));
    assert_eq!(api.send(del).await.status, StatusCode::NOT_FOUND);

    dir.write(
        "package.json",
        r#"{"name": "web", "scripts": {"build": "vite build"}}"#,
    );
    let r = api
        .post(&format!("/projects/{id}/refresh"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["languages"], json!(["javascript", "rust"]));
    assert_eq!(r.body["notes"][0], "n1", "user notes survive a refresh");
    let r = api.get(&format!("/projects/{id}/context"), None).await;
    assert!(
        r.body["prompt_context"]
            .as_str()
            .unwrap()
            .contains("cargo test"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["raw"]["id"], id);

    let del = api.client.delete(format!("{}/projects/{id}", api.base));
    assert_eq!(api.send(del).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/projects/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn folder_browsing_and_its_refusals() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let dir = TempDir::new();
    dir.write("proj/go.mod", "module example.com/x\n");
    dir.write("notes.txt", "x");
    let edge = start_edge(
        &db,
        &auth,
        &[("DISABLE_AUTH", "true"), ("WORKSPACE_ROOT", dir.str())],
    )
    .await;
    let api = edge.api();
    let r = api.get("/projects/browse/folders", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["current_path"],
        dir.str(),
        "defaults to WORKSPACE_ROOT"
    );
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["name"].as_str(),
            entries[0]["is_project"].as_bool()
        ),
        (Some("proj"), Some(true))
    );
    assert_eq!(
        (entries[1]["name"].as_str(), entries[1]["is_dir"].as_bool()),
        (Some("notes.txt"), Some(false))
    );
    let r = api
        .get(
            &format!("/projects/browse/folders?path={}/proj", dir.str()),
            None,
        )
        .await;
    assert_eq!(r.body["can_create_project"], true);
    for (path, code) in [
        ("/proc", StatusCode::FORBIDDEN),
        ("/sys", StatusCode::FORBIDDEN),
        ("/root", StatusCode::FORBIDDEN),
        ("relative", StatusCode::BAD_REQUEST),
        ("/no/such", StatusCode::BAD_REQUEST),
    ] {
        let r = api
            .get(&format!("/projects/browse/folders?path={path}"), None)
            .await;
        assert_eq!(r.status, code, "{path}: {:?}", r.body);
    }
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn project_routes_need_authentication() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    for path in [
        "/projects",
        "/projects/browse/folders",
        "/tools",
        "/tools/skills",
    ] {
        let r = api.get(path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    edge.stop().await;
    auth.stop().await;
}
