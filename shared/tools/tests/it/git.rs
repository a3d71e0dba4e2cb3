//! The git skill on a real repository in a temporary project.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TempDir, ctx, toolbox};

fn repo() -> TempDir {
    let dir = TempDir::new();
    let ok = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    dir.write("README.md", "hello\n");
    dir
}

async fn git(dir: &TempDir, tool: &str, input: Value) -> gathering_tools::SkillResponse {
    toolbox("").execute(tool, input, &ctx(Some(dir))).await
}

#[tokio::test]
async fn status_add_commit_log_diff() {
    let dir = repo();
    let r = git(&dir, "git_status", json!({})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["branch"], "main");
    assert_eq!(r.data["untracked"], json!(["README.md"]));
    assert_eq!(r.data["clean"], false);
    let r = git(&dir, "git_log", json!({})).await;
    assert_eq!(r.data["commits"], json!([]), "{r:?}");

    let r = git(&dir, "git_add", json!({"paths": ["README.md"]})).await;
    assert!(r.success, "{r:?}");
    let r = git(&dir, "git_status", json!({})).await;
    assert_eq!(r.data["staged"], json!(["README.md"]));
    let r = git(
        &dir,
        "git_commit",
        json!({"message": "first commit", "author_name": "Ann", "author_email": "ann@example.com"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let hash = r.data["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 40);
    let r = git(&dir, "git_commit", json!({"message": "nothing"})).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");

    dir.write("README.md", "hello\nworld\n");
    let r = git(&dir, "git_diff", json!({})).await;
    assert!(r.data["diff"].as_str().unwrap().contains("+world"), "{r:?}");
    let r = git(&dir, "git_diff", json!({"staged": true})).await;
    assert_eq!(r.data["diff"], "");
    let r = git(&dir, "git_status", json!({})).await;
    assert_eq!(r.data["modified"], json!(["README.md"]));
    let r = git(&dir, "git_add", json!({"paths": ["."]})).await;
    assert!(r.success);
    let r = git(
        &dir,
        "git_commit",
        json!({"message": "second\n\nbody text"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = git(&dir, "git_log", json!({"limit": 5})).await;
    let commits = r.data["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(
        (commits[0]["message"].as_str(), commits[0]["body"].as_str()),
        (Some("second"), Some("body text"))
    );
    assert_eq!(
        (
            commits[1]["hash"].as_str(),
            commits[1]["author_name"].as_str()
        ),
        (Some(hash.as_str()), Some("Ann"))
    );
    let r = git(&dir, "git_diff", json!({"commit": hash})).await;
    assert!(r.data["diff"].as_str().unwrap().contains("+hello"), "{r:?}");
    let r = git(&dir, "git_status", json!({})).await;
    assert_eq!(r.data["clean"], true);
}

#[tokio::test]
async fn branches_and_stash() {
    let dir = repo();
    git(&dir, "git_add", json!({"paths": ["README.md"]})).await;
    assert!(
        git(&dir, "git_commit", json!({"message": "init"}))
            .await
            .success
    );
    let r = git(
        &dir,
        "git_branch",
        json!({"action": "create", "name": "feature/x"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = git(
        &dir,
        "git_branch",
        json!({"action": "switch", "name": "feature/x"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = git(&dir, "git_branch", json!({})).await;
    assert_eq!(
        (
            r.data["current"].as_str(),
            r.data["branches"].as_array().map(Vec::len)
        ),
        (Some("feature/x"), Some(2))
    );
    for bad in ["-D", "a..b", "x.lock", "--force"] {
        let r = git(&dir, "git_branch", json!({"action": "create", "name": bad})).await;
        assert!(!r.success, "{bad}: {r:?}");
    }
    dir.write("README.md", "changed\n");
    let r = git(
        &dir,
        "git_stash",
        json!({"action": "push", "message": "wip"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "hello\n"
    );
    let r = git(&dir, "git_stash", json!({"action": "list"})).await;
    assert_eq!(r.data["stashes"].as_array().unwrap().len(), 1);
    assert!(r.data["stashes"][0].as_str().unwrap().contains("wip"));
    let r = git(&dir, "git_stash", json!({"action": "pop"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "changed\n"
    );
    let r = git(
        &dir,
        "git_branch",
        json!({"action": "switch", "name": "main"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = git(
        &dir,
        "git_branch",
        json!({"action": "delete", "name": "feature/x"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = git(&dir, "git_branch", json!({})).await;
    assert_eq!(r.data["branches"], json!(["main"]));
}

#[tokio::test]
async fn paths_are_confined_and_hooks_do_not_run() {
    let dir = repo();
    let outside = TempDir::new();
    outside.write("o.txt", "x");
    for p in ["../o.txt", "/etc/passwd", "%2e%2e/o.txt"] {
        let r = git(&dir, "git_add", json!({"paths": [p]})).await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{p}: {r:?}");
    }
    let r = git(&dir, "git_diff", json!({"path": "../x"})).await;
    assert_eq!(r.error.as_deref(), Some("refused"));
    let hook = dir.path().join(".git/hooks/pre-commit");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ntouch {}/HOOK_RAN\n", dir.path().display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    git(&dir, "git_add", json!({"paths": ["README.md"]})).await;
    assert!(
        git(&dir, "git_commit", json!({"message": "c"}))
            .await
            .success
    );
    assert!(
        !dir.path().join("HOOK_RAN").exists(),
        "the pre-commit hook did not run"
    );
}

#[tokio::test]
async fn a_repository_above_the_project_root_is_not_used() {
    let parent = repo();
    std::fs::create_dir_all(parent.path().join("sub")).unwrap();
    let sub = gathering_tools::ProjectRoot::new(parent.path().join("sub")).unwrap();
    let c = gathering_tools::CallContext::new(gathering_tools::Grants::all())
        .confirmed(true)
        .project(Some(sub));
    let r = toolbox("").execute("git_status", json!({}), &c).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    assert!(r.message.contains("not a git repository"));
}
