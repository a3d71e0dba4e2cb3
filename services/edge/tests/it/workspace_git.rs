//! `/workspace` git through a real edge on a temporary repository: stage, commit, log, diff,
//! branches, history, graph, push and pull; the status cache invalidated by API writes and by
//! outside edits; activities persisted.

use std::process::Command;

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::projects::TempDir;
use crate::support::{Api, eventually, start_auth, start_edge};
use crate::workspace::{names, project, put, repo};

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

async fn status(api: &Api, base: &str) -> (Value, String) {
    let r = api.get(&format!("{base}/git/status"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cache = r.headers["x-workspace-cache"].to_str().unwrap().to_owned();
    (r.body["status"].clone(), cache)
}

#[tokio::test]
async fn git_stage_commit_log_diff_push_and_cache_invalidation() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let dir = repo();
    let id = project(&api, None, &dir).await;
    let base = format!("/workspace/{id}");

    let r = api.get(&format!("{base}/git/commits"), None).await;
    assert_eq!(r.body, json!([]), "no commits yet");
    let r = api
        .post(
            &format!("{base}/git/stage"),
            None,
            &json!({"files": ["README.md", "src"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["files"], json!(["README.md", "src"]));
    let (s, _) = status(&api, &base).await;
    assert_eq!(s["staged"]["added"], json!(["README.md", "src/main.py"]));
    assert_eq!(s["untracked"], json!(["node_modules/dep/index.js"]));
    let r = api
        .post(&format!("{base}/git/commit"), None, &json!({"message": "first\n\nbody", "author_name": "Ann", "author_email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let first = r.body["hash"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 40);
    let r = api
        .post(
            &format!("{base}/git/commit"),
            None,
            &json!({"message": "nothing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    let r = api.get(&format!("{base}/git/commits?limit=5"), None).await;
    let c = &r.body[0];
    assert_eq!(
        (
            c["hash"].as_str(),
            c["author_name"].as_str(),
            c["message"].as_str(),
            c["body"].as_str()
        ),
        (
            Some(first.as_str()),
            Some("Ann"),
            Some("first"),
            Some("body")
        )
    );
    assert_eq!(c["files"], json!(["README.md", "src/main.py"]));
    assert_eq!(
        c["stats"],
        json!({"files_changed": 2, "insertions": 2, "deletions": 0})
    );
    assert_eq!(
        api.get(&format!("{base}/git/commits?limit=201"), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // The status is cached, and a write through the API invalidates it at once.
    let (_, first_read) = status(&api, &base).await;
    let (_, second_read) = status(&api, &base).await;
    assert_eq!((first_read.as_str(), second_read.as_str()), ("miss", "hit"));
    let r = put(
        &api,
        &format!("{base}/file?path=README.md"),
        None,
        &json!({"content": "hello\nchanged\n", "create_backup": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let (s, cache) = status(&api, &base).await;
    assert_eq!(
        (s["modified"].clone(), cache.as_str()),
        (json!(["README.md"]), "miss")
    );
    status(&api, &base).await;
    // An edit outside the API (a terminal, an editor) is seen through file notifications.
    dir.write("outside.txt", "made elsewhere\n");
    assert!(
        eventually(10, || async {
            let (s, _) = status(&api, &base).await;
            s["untracked"]
                .as_array()
                .unwrap()
                .contains(&json!("outside.txt"))
        })
        .await,
        "the cached status saw the outside edit"
    );
    // The tree too.
    let tree = api.get(&format!("{base}/files"), None).await;
    assert!(names(&tree.body).contains(&"outside.txt".to_owned()));
    std::fs::remove_file(dir.path().join("outside.txt")).unwrap();
    assert!(
        eventually(10, || async {
            let t = api.get(&format!("{base}/files"), None).await;
            !names(&t.body).contains(&"outside.txt".to_owned())
        })
        .await
    );

    let r = api.get(&format!("{base}/git/diff"), None).await;
    assert!(
        r.body["diff"]["diff"]
            .as_str()
            .unwrap()
            .contains("+changed"),
        "{:?}",
        r.body
    );
    let r = api
        .get(
            &format!("{base}/git/diff?commit={first}&file_path=README.md"),
            None,
        )
        .await;
    assert!(
        r.body["diff"]["diff"].as_str().unwrap().contains("+hello"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["diff"]["file"], "README.md");
    let r = api
        .get(&format!("{base}/git/diff?commit=--output=/tmp/x"), None)
        .await;
    assert!(r.body["diff"]["error"].is_string(), "{:?}", r.body);
    assert_eq!(
        api.get(&format!("{base}/git/diff?file_path=../x"), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Unstage.
    api.post(
        &format!("{base}/git/stage"),
        None,
        &json!({"files": ["README.md"]}),
    )
    .await;
    let (s, _) = status(&api, &base).await;
    assert_eq!(s["staged"]["modified"], json!(["README.md"]));
    let r = api
        .post(
            &format!("{base}/git/unstage"),
            None,
            &json!({"files": ["README.md"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (s, _) = status(&api, &base).await;
    assert_eq!(
        (s["staged"]["modified"].clone(), s["modified"].clone()),
        (json!([]), json!(["README.md"]))
    );
    assert_eq!(
        api.post(
            &format!("{base}/git/stage"),
            None,
            &json!({"files": ["../x"]})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // A path git does not know is the caller's mistake (400 with git's message), not a 500.
    let r = api
        .post(
            &format!("{base}/git/stage"),
            None,
            &json!({"files": ["no-such-file.txt"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("did not match any file")),
        "{:?}",
        r.body
    );
    api.post(
        &format!("{base}/git/stage"),
        None,
        &json!({"files": ["README.md"]}),
    )
    .await;
    let r = api
        .post(
            &format!("{base}/git/commit"),
            None,
            &json!({"message": "second"}),
        )
        .await;
    let second = r.body["hash"].as_str().unwrap().to_owned();

    let r = api.get(&format!("{base}/git/branches"), None).await;
    assert_eq!(r.body["branches"]["current"], "main");
    assert_eq!(
        r.body["branches"]["branches"],
        json!([{"name": "main", "type": "local", "current": true}])
    );
    let r = api
        .get(
            &format!("{base}/git/file-history?file_path=README.md"),
            None,
        )
        .await;
    let hist: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hist, [second.as_str(), first.as_str()]);
    assert_eq!(r.body[0]["file"], "README.md");
    let r = api.get(&format!("{base}/git/graph"), None).await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(
        (
            r.body["commits"][0]["parents"][0].as_str(),
            r.body["commits"][0]["branches"].clone()
        ),
        (Some(first.as_str()), json!(["main"]))
    );

    // Push to and pull from a bare repository (a local remote: the caller here is an admin).
    let remote = TempDir::new();
    git(remote.path(), &["init", "-q", "--bare"]);
    git(dir.path(), &["remote", "add", "origin", remote.str()]);
    let r = api
        .post(
            &format!("{base}/git/push"),
            None,
            &json!({"set_upstream": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["remote"].as_str(), r.body["branch"].as_str()),
        (Some("origin"), Some("main"))
    );
    let r = api
        .post(&format!("{base}/git/pull"), None, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = api
        .post(
            &format!("{base}/git/push"),
            None,
            &json!({"remote": "--upload-pack=touch /tmp/x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = api
        .post(
            &format!("{base}/git/push"),
            None,
            &json!({"remote": "nowhere"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    // Remotes are checked like the agents' git tools: no cloud metadata address, no ssh,
    // no local repository outside the project roots — for admins too.
    for (name, url) in [
        ("meta", "http://169.254.169.254/latest.git"),
        ("ssh", "ssh://git@example.com/x.git"),
        ("etc", "/etc"),
    ] {
        git(dir.path(), &["remote", "add", name, url]);
        for op in ["push", "pull"] {
            let r = api
                .post(&format!("{base}/git/{op}"), None, &json!({"remote": name}))
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{op} {url}: {:?}",
                r.body
            );
        }
    }

    // Activities: the API's own writes are recorded; agents add theirs.
    let r = api.get(&format!("{base}/activities"), None).await;
    let kinds: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["commit", "file_edited", "commit"]);
    let r = api
        .post(
            &format!("{base}/activities"),
            None,
            &json!({"activity_type": "test_run", "details": {"passed": 3}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["type"].as_str(),
            r.body["details"]["passed"].as_i64(),
            r.body["project_id"].as_i64()
        ),
        (Some("test_run"), Some(3), Some(id))
    );
    let r = api
        .post(
            &format!("{base}/activities"),
            None,
            &json!({"activity_type": "hacking"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = api
        .get(&format!("{base}/activities?activity_type=test_run"), None)
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = api.get(&format!("{base}/activities/stats"), None).await;
    assert_eq!(
        (
            r.body["total"].as_i64(),
            r.body["by_type"]["commit"].as_i64()
        ),
        (Some(4), Some(2)),
        "{:?}",
        r.body
    );
    // Persisted: another edge (or a restarted one) lists the same activities.
    let other = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let r = other
        .api()
        .get(&format!("{base}/activities/stats"), None)
        .await;
    assert_eq!(r.body["total"], 4);
    other.stop().await;

    // A project that is not a repository.
    let plain = TempDir::new();
    plain.write("a.txt", "a");
    let pid = project(&api, None, &plain).await;
    assert_eq!(
        api.get(&format!("/workspace/{pid}/git/status"), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get(&format!("/workspace/{pid}/git/graph"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/workspace/{pid}/git/commits"), None)
            .await
            .body,
        json!([])
    );
    assert_eq!(
        api.post(
            &format!("/workspace/{pid}/git/stage"),
            None,
            &json!({"files": ["a.txt"]})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    edge.stop().await;
    auth.stop().await;
}
