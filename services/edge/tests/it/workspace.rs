//! `/workspace` on temporary git repositories through a real edge: the tree, reading, writing
//! and deleting files, every way out of the project refused, permissions and run-python's
//! limits (git, the cache and activities: `workspace_git`).

use std::process::Command;

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::projects::TempDir;
use crate::support::{Api, Reply, eventually, start_auth, start_edge};

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

/// A git repository (branch main) with a few files.
pub fn repo() -> TempDir {
    let dir = TempDir::new();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    dir.write("README.md", "hello\n");
    dir.write("src/main.py", "print('hi')\n");
    dir.write("node_modules/dep/index.js", "x\n");
    dir
}

pub async fn project(api: &Api, token: Option<&str>, dir: &TempDir) -> i64 {
    let r = api
        .post(
            "/projects",
            token,
            &json!({"name": "ws", "path": dir.str(), "auto_detect": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

pub async fn put(api: &Api, path: &str, token: Option<&str>, body: &Value) -> Reply {
    let mut req = api.client.put(format!("{}{path}", api.base)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    api.send(req).await
}

async fn delete(api: &Api, path: &str) -> Reply {
    api.send(api.client.delete(format!("{}{path}", api.base)))
        .await
}

pub fn names(node: &Value) -> Vec<String> {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tree_read_write_delete_and_every_escape_refused() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let dir = repo();
    let outside = TempDir::new();
    outside.write("secret.txt", "top secret\n");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("escape.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let id = project(&api, None, &dir).await;
    let base = format!("/workspace/{id}");

    let r = api.get(&format!("{base}/info"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["type"].as_str(), r.body["is_git_repo"].as_bool()),
        (Some("development"), Some(true))
    );
    assert!(
        r.body["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("git"))
    );

    let r = api.get(&format!("{base}/files"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["path"], "");
    assert_eq!(names(&r.body), ["README.md", "escape.txt", "link", "src"]);
    let readme = &r.body["children"][0];
    assert_eq!(
        (readme["git_status"].as_str(), readme["size"].as_u64()),
        (Some("??"), Some(6))
    );
    assert_eq!(readme["mime_type"], "text/markdown");
    // The symlinked folder is listed, not followed.
    assert!(r.body["children"][2].get("children").is_none());
    let src = &r.body["children"][3];
    assert_eq!(
        (src["type"].as_str(), src["children"][0]["path"].as_str()),
        (Some("directory"), Some("src/main.py"))
    );
    let r = api
        .get(
            &format!("{base}/files?max_depth=1&include_git_status=false"),
            None,
        )
        .await;
    assert_eq!(r.body["children"], json!([]));
    assert_eq!(
        api.get(&format!("{base}/files?max_depth=0"), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let r = api
        .get(&format!("{base}/file?path=src/main.py"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["content"].as_str(),
            r.body["type"].as_str(),
            r.body["lines"].as_u64()
        ),
        (Some("print('hi')\n"), Some("text"), Some(2))
    );
    dir.write("blob.bin", "a\0b");
    let r = api.get(&format!("{base}/file?path=blob.bin"), None).await;
    assert_eq!(
        (r.body["type"].as_str(), r.body["size"].as_u64()),
        (Some("binary"), Some(3))
    );
    assert_eq!(
        api.get(&format!("{base}/file?path=nope.txt"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let raw = api
        .client
        .get(format!("{}{base}/file/raw?path=src/main.py", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-type"], "text/plain");
    assert_eq!(
        raw.headers()["content-disposition"],
        "inline; filename=\"main.py\""
    );
    assert_eq!(raw.text().await.unwrap(), "print('hi')\n");

    // Write: a new file (folders created), then an existing one with its backup.
    let r = put(
        &api,
        &format!("{base}/file?path=pkg/new.py"),
        None,
        &json!({"content": "x = 1\n", "create_backup": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["path"].as_str(),
            r.body["size"].as_u64(),
            r.body["backup"].clone()
        ),
        (Some("pkg/new.py"), Some(6), Value::Null)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pkg/new.py")).unwrap(),
        "x = 1\n"
    );
    let r = put(
        &api,
        &format!("{base}/file?path=README.md"),
        None,
        &json!({"content": "changed\n"}),
    )
    .await;
    let backup = r.body["backup"].as_str().unwrap().to_owned();
    assert!(
        backup.starts_with("README.md.") && backup.ends_with(".bak"),
        "{backup}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&backup)).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "changed\n"
    );
    let r = put(
        &api,
        &format!("{base}/file?path=src"),
        None,
        &json!({"content": "x"}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a folder is not a file: {:?}",
        r.body
    );
    let r = delete(&api, &format!("{base}/file?path=pkg/new.py")).await;
    assert_eq!(
        (r.status, r.body["deleted"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{:?}",
        r.body
    );
    assert!(!dir.path().join("pkg/new.py").exists());

    // Every way out: `..`, absolute, through a symlink (file and folder), NUL, encoded once
    // and twice.
    let escapes = [
        "../secret.txt",
        "/etc/passwd",
        "escape.txt",
        "link/secret.txt",
        "a%00b",
        "%252e%252e%252fsecret.txt",
        "..%252fsecret.txt",
        "src/%252e%252e/%252e%252e/etc/passwd",
    ];
    for p in escapes {
        let r = api.get(&format!("{base}/file?path={p}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "read {p}: {:?}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .starts_with("File path outside project"),
            "{p}: {:?}",
            r.body
        );
        let r = api.get(&format!("{base}/file/raw?path={p}"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "raw {p}: {:?}", r.body);
        let r = put(
            &api,
            &format!("{base}/file?path={p}"),
            None,
            &json!({"content": "pwned", "create_backup": false}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "write {p}: {:?}", r.body);
        let r = delete(&api, &format!("{base}/file?path={p}")).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "delete {p}: {:?}",
            r.body
        );
    }
    let r = put(
        &api,
        &format!("{base}/file?path=.git/hooks/pre-commit"),
        None,
        &json!({"content": "#!/bin/sh", "create_backup": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "top secret\n"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "nothing written outside"
    );
    assert!(!dir.path().join(".git/hooks/pre-commit").exists());

    let r = api.get("/workspace/999999/files", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    edge.stop().await;
    auth.stop().await;
}

/// `PUT …/file` takes bodies beyond the app's 2 MiB JSON limit (a file is up to 10 MiB), and its
/// body errors keep the contract's 422 shape.
#[tokio::test]
async fn large_files_are_written_and_bad_bodies_are_422() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let dir = repo();
    let id = project(&api, None, &dir).await;
    let file = format!("/workspace/{id}/file?path=big.txt");

    let content = "x".repeat(3 * 1024 * 1024);
    let r = put(&api, &file, None, &json!({"content": content})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["size"], json!(3 * 1024 * 1024));
    assert_eq!(
        std::fs::metadata(dir.path().join("big.txt")).unwrap().len(),
        3 * 1024 * 1024
    );

    // Beyond the route's own limit (12 MiB of JSON).
    let r = put(
        &api,
        &file,
        None,
        &json!({"content": "y".repeat(13 * 1024 * 1024)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body"]));
    // Not JSON, and an unknown field.
    let r = api
        .send(
            api.client
                .put(format!("{}{file}", api.base))
                .header("content-type", "text/plain")
                .body("hello"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body"]));
    let r = put(&api, &file, None, &json!({"content": "a", "mode": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(
        std::fs::metadata(dir.path().join("big.txt")).unwrap().len(),
        3 * 1024 * 1024
    );
}

#[tokio::test]
async fn run_python_runs_in_the_project_within_limits() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("WORKSPACE_PYTHON_TIMEOUT_SECONDS", "2"),
            ("GATHERING_CODE_MEMORY_MB", "256"),
        ],
    )
    .await;
    let api = edge.api();
    let dir = TempDir::new();
    dir.write("helper.py", "VALUE = 42\n");
    dir.write(
        "script.py",
        "import helper\nprint('script', helper.VALUE)\n",
    );
    let id = project(&api, None, &dir).await;
    let url = format!("/workspace/{id}/run-python");
    let run = |code: &str| {
        let (api, url, body) = (api.clone(), url.clone(), json!({"code": code}));
        async move { api.post(&url, None, &body).await }
    };

    let r = run("import os, helper\nprint(os.getcwd(), helper.VALUE)").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stdout"], format!("{} 42\n", dir.str()));
    assert_eq!(r.body["exit_code"], 0);
    assert!(r.body["execution_time"].as_f64().unwrap() > 0.0);
    let r = api
        .post(
            &format!("/workspace/{id}/run-python"),
            None,
            &json!({"code": "", "file_path": "script.py"}),
        )
        .await;
    assert_eq!(r.body["stdout"], "script 42\n", "{:?}", r.body);
    let r = run("import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)").await;
    assert_eq!(
        (r.body["exit_code"].as_i64(), r.body["stderr"].as_str()),
        (Some(3), Some("oops\n"))
    );
    // The environment is clean: no secret of the edge reaches the code.
    let r = run("import os\nprint(sorted(k for k in os.environ if 'DATABASE' in k or 'KEY' in k))")
        .await;
    assert_eq!(r.body["stdout"], "[]\n");
    // Time: 408, and the process is gone.
    let r = run(
        "import os, time\nopen('pid', 'w').write(str(os.getpid()))\nwhile True: time.sleep(0.05)",
    )
    .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT, "{:?}", r.body);
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    assert!(
        eventually(5, || async {
            !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z")
        })
        .await
    );
    // Memory.
    let r = run("x = bytearray(512 * 1024 * 1024)\nprint('allocated')").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["stderr"].as_str().unwrap().contains("MemoryError"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["exit_code"], 1);
    // Output.
    let r = run("import sys\nsys.stdout.write('x' * (3 * 1024 * 1024))").await;
    assert_eq!(r.body["stdout_truncated"], true, "{}", r.body["stderr"]);
    assert!(r.body["stdout"].as_str().unwrap().len() <= 1024 * 1024);
    let r = api
        .post(
            &format!("/workspace/{id}/run-python"),
            None,
            &json!({"code": "", "file_path": "../etc/passwd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn permissions_and_the_execution_gate() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("GATHERING_TOOL_GRANTS", "read,git"),
            ("GATHERING_WORKSPACE_EXEC", "admin"),
        ],
    )
    .await;
    let api = edge.api();
    let (token, _) = api.user("dev@example.com", "a long password 1").await;
    let t = Some(token.as_str());
    let dir = repo();
    let id = project(&api, t, &dir).await;
    assert_eq!(
        api.get(&format!("/workspace/{id}/files"), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get(&format!("/workspace/{id}/file?path=README.md"), t)
            .await
            .status,
        StatusCode::OK
    );
    let r = put(
        &api,
        &format!("/workspace/{id}/file?path=README.md"),
        t,
        &json!({"content": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "hello\n"
    );
    let r = api
        .post(
            &format!("/workspace/{id}/git/stage"),
            t,
            &json!({"files": ["README.md"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = api
        .post(
            &format!("/workspace/{id}/run-python"),
            t,
            &json!({"code": "print(1)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("admins"));
    edge.stop().await;
    auth.stop().await;
}
