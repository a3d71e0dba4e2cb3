//! The filesystem skill: every escape from the project root is refused (`../`, absolute,
//! `%2e%2e`, symlink pointing outside, NUL byte), and the tools work inside it.

use serde_json::{Value, json};

use crate::helpers::{TempDir, ctx, toolbox};

struct Fixture {
    project: TempDir,
    outside: TempDir,
}

fn fixture() -> Fixture {
    let project = TempDir::new();
    let outside = TempDir::new();
    outside.write("secret.txt", "top secret");
    project.write("src/main.rs", "fn main() {\n    println!(\"hi\");\n}\n");
    project.write("README.md", "# Demo\nhello world\n");
    std::os::unix::fs::symlink(outside.path(), project.path().join("link_out")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        project.path().join("secret_link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("not-yet.txt"),
        project.path().join("dangling"),
    )
    .unwrap();
    Fixture { project, outside }
}

async fn call(f: &Fixture, tool: &str, input: Value) -> gathering_tools::SkillResponse {
    toolbox("")
        .execute(tool, input, &ctx(Some(&f.project)))
        .await
}

fn escape_paths(f: &Fixture) -> Vec<String> {
    let outside = f.outside.path().display().to_string();
    let rel = format!(
        "../{}/secret.txt",
        f.outside.path().file_name().unwrap().to_string_lossy()
    );
    vec![
        rel.clone(),
        "src/../../etc/passwd".into(),
        format!("{outside}/secret.txt"),
        "/etc/hostname".into(),
        "%2e%2e/%2e%2e/etc/passwd".into(),
        "%2E%2E%2Fsecret.txt".into(),
        "%252e%252e%252fsecret.txt".into(),
        "..%2fsecret.txt".into(),
        "link_out/secret.txt".into(),
        "secret_link".into(),
        "src/main.rs\0.txt".into(),
        "%00".into(),
    ]
}

#[tokio::test]
async fn every_escape_is_refused_for_reads() {
    let f = fixture();
    for path in escape_paths(&f) {
        for tool in ["fs_read", "fs_info"] {
            let r = call(&f, tool, json!({"path": path})).await;
            assert!(!r.success, "{tool} {path:?} was allowed: {r:?}");
            assert_eq!(
                r.error.as_deref(),
                Some("refused"),
                "{tool} {path:?}: {r:?}"
            );
            assert!(!r.message.contains("top secret"));
        }
    }
}

#[tokio::test]
async fn every_escape_is_refused_for_writes_and_nothing_is_written_outside() {
    let f = fixture();
    let mut paths = escape_paths(&f);
    paths.push("link_out/new.txt".into());
    paths.push("dangling".into());
    for path in &paths {
        let r = call(&f, "fs_write", json!({"path": path, "content": "pwned"})).await;
        assert_eq!(
            r.error.as_deref(),
            Some("refused"),
            "fs_write {path:?}: {r:?}"
        );
        let r = call(&f, "fs_mkdir", json!({"path": format!("{path}/d")})).await;
        assert_eq!(
            r.error.as_deref(),
            Some("refused"),
            "fs_mkdir {path:?}: {r:?}"
        );
        let r = call(&f, "fs_delete", json!({"path": path})).await;
        assert_eq!(
            r.error.as_deref(),
            Some("refused"),
            "fs_delete {path:?}: {r:?}"
        );
        let r = call(
            &f,
            "fs_copy",
            json!({"source": "README.md", "destination": path}),
        )
        .await;
        assert_eq!(
            r.error.as_deref(),
            Some("refused"),
            "fs_copy {path:?}: {r:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(f.outside.path().join("secret.txt")).unwrap(),
        "top secret"
    );
    assert!(!f.outside.path().join("new.txt").exists());
    assert!(
        !f.outside.path().join("not-yet.txt").exists(),
        "the dangling link was not written through"
    );
    let listed: Vec<_> = std::fs::read_dir(f.outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test]
async fn listing_and_searching_outside_is_refused() {
    let f = fixture();
    for (tool, input) in [
        ("fs_list", json!({"path": "link_out"})),
        ("fs_list", json!({"path": "../"})),
        ("fs_tree", json!({"path": "/"})),
        ("fs_search", json!({"query": "secret", "path": "link_out"})),
    ] {
        let r = call(&f, tool, input.clone()).await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{tool} {input}: {r:?}");
    }
    // A search from the root does not follow the symlink out.
    let r = call(&f, "fs_search", json!({"query": "top secret"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["total"], 0);
}

#[tokio::test]
async fn the_git_folder_is_not_written() {
    let f = fixture();
    std::fs::create_dir_all(f.project.path().join(".git/hooks")).unwrap();
    let r = call(
        &f,
        "fs_write",
        json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\necho pwned"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    assert!(!f.project.path().join(".git/hooks/pre-commit").exists());
}

#[tokio::test]
async fn tools_work_inside_the_root() {
    let f = fixture();
    let r = call(
        &f,
        "fs_write",
        json!({"path": "notes/todo.txt", "content": "one\ntwo\n"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["created"], true);
    let r = call(
        &f,
        "fs_write",
        json!({"path": "notes/todo.txt", "content": "three\n", "mode": "append"}),
    )
    .await;
    assert!(r.success);
    let r = call(
        &f,
        "fs_write",
        json!({"path": "notes/todo.txt", "content": "x", "mode": "create"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    let r = call(&f, "fs_read", json!({"path": "notes/todo.txt"})).await;
    assert_eq!(r.data["content"], "one\ntwo\nthree\n");
    assert_eq!(r.data["lines"], 3);
    let r = call(
        &f,
        "fs_read",
        json!({"path": "./notes//todo.txt", "max_bytes": 3}),
    )
    .await;
    assert_eq!(
        (r.data["content"].as_str(), r.data["truncated"].as_bool()),
        (Some("one"), Some(true))
    );

    let r = call(&f, "fs_list", json!({})).await;
    let names: Vec<&str> = r.data["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[..2], ["notes", "src"], "folders first: {names:?}");
    assert!(names.contains(&"README.md"));
    let r = call(&f, "fs_list", json!({"path": "src", "pattern": "*.rs"})).await;
    assert_eq!(r.data["total"], 1);

    let r = call(&f, "fs_info", json!({"path": "README.md"})).await;
    assert_eq!(
        (r.data["type"].as_str(), r.data["size"].as_u64()),
        (Some("file"), Some(19))
    );
    let r = call(&f, "fs_mkdir", json!({"path": "a/b/c"})).await;
    assert!(r.success && f.project.path().join("a/b/c").is_dir());
    let r = call(
        &f,
        "fs_copy",
        json!({"source": "src", "destination": "src_copy"}),
    )
    .await;
    assert_eq!(r.data["files"], 1, "{r:?}");
    assert!(f.project.path().join("src_copy/main.rs").is_file());
    let r = call(
        &f,
        "fs_move",
        json!({"source": "src_copy", "destination": "moved/src"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert!(
        f.project.path().join("moved/src/main.rs").is_file()
            && !f.project.path().join("src_copy").exists()
    );
    let r = call(&f, "fs_search", json!({"query": "PRINTLN"})).await;
    assert_eq!(r.data["total"], 2, "{r:?}");
    let r = call(
        &f,
        "fs_search",
        json!({"query": "fn\\s+main", "regex": true, "file_pattern": "*.rs"}),
    )
    .await;
    assert_eq!(r.data["matches"][0]["line"], 1);
    let r = call(&f, "fs_tree", json!({"max_depth": 2})).await;
    assert!(
        r.success
            && r.data["tree"]["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "src")
    );

    let r = call(&f, "fs_delete", json!({"path": "a"})).await;
    assert_eq!(
        r.error.as_deref(),
        Some("execution_failed"),
        "non-empty folder needs recursive: {r:?}"
    );
    let r = call(&f, "fs_delete", json!({"path": "a", "recursive": true})).await;
    assert!(r.success && !f.project.path().join("a").exists());
    let r = call(&f, "fs_delete", json!({"path": "."})).await;
    assert_eq!(r.error.as_deref(), Some("refused"));
    assert!(f.project.path().exists());
    let r = call(&f, "fs_read", json!({"path": "missing.txt"})).await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
}

#[tokio::test]
async fn fs_delete_is_dangerous_and_file_tools_need_a_project() {
    let f = fixture();
    let tb = toolbox("");
    let unconfirmed = gathering_tools::CallContext::new(gathering_tools::Grants::all())
        .project(Some(f.project.root()));
    let r = tb
        .execute("fs_delete", json!({"path": "README.md"}), &unconfirmed)
        .await;
    assert!(r.needs_confirmation);
    assert!(f.project.path().join("README.md").exists());
    let r = tb
        .execute("fs_read", json!({"path": "README.md"}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    assert!(r.message.contains("project"), "{r:?}");
}
