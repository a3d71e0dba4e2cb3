//! git clone, pull and push with real remotes: bare repositories in other project folders (a
//! local remote inside the project roots), one served over HTTP on 127.0.0.1 (git's dumb HTTP
//! protocol, behind the outbound guard), and remotes the rules refuse.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use gathering_tools::project::ProjectRoots;
use gathering_tools::{CallContext, Grants, ProjectRoot, SkillResponse, Toolbox};
use serde_json::{Value, json};

use crate::helpers::{TempDir, config, toolbox};

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A bare repository and a project whose `origin` it is, with one commit pushed by hand.
fn upstream() -> (TempDir, TempDir) {
    let bare = TempDir::new();
    sh(bare.path(), &["init", "-q", "--bare", "-b", "main"]);
    let work = TempDir::new();
    sh(work.path(), &["init", "-q", "-b", "main"]);
    work.write("README.md", "hello\n");
    sh(work.path(), &["add", "."]);
    sh(work.path(), &["commit", "-q", "-m", "first"]);
    sh(
        work.path(),
        &["remote", "add", "origin", &bare.path().to_string_lossy()],
    );
    (bare, work)
}

fn at(path: &Path, confirmed: bool) -> CallContext {
    CallContext::new(Grants::all())
        .confirmed(confirmed)
        .project(Some(ProjectRoot::new(path).unwrap()))
}

async fn call(tb: &Toolbox, tool: &str, input: Value, ctx: &CallContext) -> SkillResponse {
    tb.execute(tool, input, ctx).await
}

#[tokio::test]
async fn clone_push_pull_and_checkout_with_a_local_remote() {
    let tb = toolbox("");
    let (bare, a) = upstream();
    let head_a = sh(a.path(), &["rev-parse", "HEAD"]);

    // Push waits for confirmation, then sends the branch.
    let r = call(&tb, "git_push", json!({}), &at(a.path(), false)).await;
    assert!(r.needs_confirmation, "{r:?}");
    assert!(sh(bare.path(), &["branch", "--list"]).is_empty());
    let r = call(
        &tb,
        "git_push",
        json!({"remote": "origin", "set_upstream": true}),
        &at(a.path(), true),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["branch"], "main");
    assert_eq!(sh(bare.path(), &["rev-parse", "main"]), head_a);

    // Clone it into another project.
    let b = TempDir::new();
    let url = bare.path().to_string_lossy().into_owned();
    let r = call(&tb, "git_clone", json!({"url": url}), &at(b.path(), false)).await;
    assert!(r.needs_confirmation, "{r:?}");
    let r = call(
        &tb,
        "git_clone",
        json!({"url": url, "path": "work"}),
        &at(b.path(), true),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (&r.data["path"], &r.data["branch"], r.data["head"].as_str()),
        (&json!("work"), &json!("main"), Some(head_a.as_str()))
    );
    let clone_dir = b.path().join("work");
    assert_eq!(
        std::fs::read_to_string(clone_dir.join("README.md")).unwrap(),
        "hello\n"
    );
    // A folder that is not empty is not cloned over.
    let r = call(
        &tb,
        "git_clone",
        json!({"url": format!("file://{url}"), "path": "work"}),
        &at(b.path(), true),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");

    // A new commit pushed from A arrives in the clone with pull.
    a.write("NEWS.md", "news\n");
    sh(a.path(), &["add", "."]);
    sh(a.path(), &["commit", "-q", "-m", "second"]);
    let r = call(&tb, "git_push", json!({}), &at(a.path(), true)).await;
    assert!(r.success, "{r:?}");
    let r = call(&tb, "git_pull", json!({}), &at(&clone_dir, false)).await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(clone_dir.join("NEWS.md")).unwrap(),
        "news\n"
    );
    assert_eq!(
        sh(&clone_dir, &["rev-parse", "HEAD"]),
        sh(a.path(), &["rev-parse", "HEAD"])
    );

    // Branch create, checkout, list and delete in the clone.
    let ctx = at(&clone_dir, true);
    for (action, name) in [("create", "feat"), ("checkout", "feat")] {
        let r = call(
            &tb,
            "git_branch",
            json!({"action": action, "name": name}),
            &ctx,
        )
        .await;
        assert!(r.success, "{action}: {r:?}");
    }
    let r = call(&tb, "git_branch", json!({"action": "list"}), &ctx).await;
    assert_eq!(r.data["current"], "feat", "{r:?}");
    assert_eq!(r.data["branches"], json!(["feat", "main"]));
    let r = call(
        &tb,
        "git_branch",
        json!({"action": "checkout", "name": "main"}),
        &ctx,
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = call(
        &tb,
        "git_branch",
        json!({"action": "delete", "name": "feat"}),
        &ctx,
    )
    .await;
    assert!(r.success, "{r:?}");
    // Pushing the new branch to the remote.
    let r = call(
        &tb,
        "git_branch",
        json!({"action": "create", "name": "topic"}),
        &ctx,
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = call(&tb, "git_push", json!({"branch": "topic"}), &ctx).await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        sh(bare.path(), &["rev-parse", "topic"]),
        sh(&clone_dir, &["rev-parse", "topic"])
    );
}

#[tokio::test]
async fn remotes_outside_the_rules_are_refused() {
    let (bare, a) = upstream();
    let b = TempDir::new();
    // Only B's folder is a project root: the bare repository is outside every root.
    let mut cfg = config("");
    cfg.project_roots = ProjectRoots::new(vec![b.path().to_path_buf()]);
    let tb = Toolbox::new(None, cfg).unwrap();
    let url = bare.path().to_string_lossy().into_owned();
    for bad in [
        url.clone(),
        format!("file://{url}"),
        "/etc".to_owned(),
        "ssh://git@example.com/r.git".to_owned(),
        "git@example.com:r.git".to_owned(),
        "ext::sh".to_owned(),
        "http://127.0.0.1:9/r.git".to_owned(),
        "http://169.254.169.254/r.git".to_owned(),
    ] {
        let r = call(
            &tb,
            "git_clone",
            json!({"url": bad, "path": "x"}),
            &at(b.path(), true),
        )
        .await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{bad}: {r:?}");
    }
    assert!(!b.path().join("x").exists());
    // Push and pull check the remote's URLs too.
    let ctx = at(a.path(), true);
    for tool in ["git_push", "git_pull"] {
        let r = call(&tb, tool, json!({}), &ctx).await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{tool}: {r:?}");
    }
    sh(
        a.path(),
        &[
            "remote",
            "set-url",
            "origin",
            "http://169.254.169.254/r.git",
        ],
    );
    let r = call(&tb, "git_push", json!({}), &ctx).await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    let r = call(&tb, "git_pull", json!({"remote": "nope"}), &ctx).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    assert!(sh(bare.path(), &["branch", "--list"]).is_empty());
    // Clone into the project's .git or outside the root is refused.
    let ok_url = format!("file://{}", a.path().display());
    let mut cfg = config("");
    cfg.project_roots = ProjectRoots::new(vec![std::env::temp_dir()]);
    let tb = Toolbox::new(None, cfg).unwrap();
    for (dest, code) in [
        (".git/x", "refused"),
        ("../x", "refused"),
        ("/tmp/x", "refused"),
    ] {
        let r = call(
            &tb,
            "git_clone",
            json!({"url": ok_url, "path": dest}),
            &at(a.path(), true),
        )
        .await;
        assert_eq!(r.error.as_deref(), Some(code), "{dest}: {r:?}");
    }
}

/// Serves a folder's files (git's dumb HTTP protocol needs nothing else).
async fn serve(dir: PathBuf) -> String {
    async fn file(State(dir): State<PathBuf>, uri: Uri) -> Result<Vec<u8>, StatusCode> {
        let rel = uri.path().trim_start_matches('/');
        if rel.split('/').any(|s| s == "..") {
            return Err(StatusCode::BAD_REQUEST);
        }
        tokio::fs::read(dir.join(rel))
            .await
            .map_err(|_| StatusCode::NOT_FOUND)
    }
    let app = Router::new().fallback(file).with_state(dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn clone_over_http_goes_through_the_guard() {
    let (bare, a) = upstream();
    sh(a.path(), &["push", "-q", "origin", "main"]);
    sh(bare.path(), &["update-server-info"]);
    let base = serve(bare.path().to_path_buf()).await;
    let url = format!("{base}/");
    let b = TempDir::new();

    // 127.0.0.1 is private: refused unless the operator allows it.
    let r = call(
        &toolbox(""),
        "git_clone",
        json!({"url": url, "path": "r"}),
        &at(b.path(), true),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    let r = call(
        &toolbox("127.0.0.1"),
        "git_clone",
        json!({"url": url, "path": "r"}),
        &at(b.path(), true),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["head"], sh(a.path(), &["rev-parse", "HEAD"]));
    assert!(b.path().join("r/README.md").is_file());
}

#[tokio::test]
async fn a_clone_larger_than_the_limit_is_stopped_and_removed() {
    // 3 MiB that do not compress, committed to a repository in another project.
    let (bare, work) = upstream();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(work.path().join("noise.bin"), &noise).unwrap();
    sh(work.path(), &["add", "."]);
    sh(work.path(), &["commit", "-q", "-m", "noise"]);
    sh(work.path(), &["push", "-q", "origin", "main"]);
    let url = bare.path().to_string_lossy().into_owned();

    let small = Toolbox::new(
        None,
        gathering_tools::ToolsConfig {
            git_clone_max_bytes: 1024 * 1024,
            ..config("")
        },
    )
    .unwrap();
    let dest = TempDir::new();
    let r = call(
        &small,
        "git_clone",
        json!({"url": url, "path": "big"}),
        &at(dest.path(), true),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("too_large"), "{r:?}");
    assert!(r.message.contains("GATHERING_GIT_CLONE_MAX_BYTES"), "{r:?}");
    assert!(
        !dest.path().join("big").exists(),
        "the partial clone is removed"
    );

    // Under the default limit the same clone succeeds.
    let r = call(
        &toolbox(""),
        "git_clone",
        json!({"url": url, "path": "big"}),
        &at(dest.path(), true),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        std::fs::read(dest.path().join("big/noise.bin")).unwrap(),
        noise
    );
}
