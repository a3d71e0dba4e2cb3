//! `/lsp` against the real Python language server (`pylsp`, installed by
//! scripts/setup-lsp.sh): completion, hover, definition and diagnostics, unsaved content,
//! crash restart and idle shutdown; an absent server is a clear error.

use std::path::PathBuf;

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::projects::TempDir;
use crate::support::{Api, eventually, start_auth, start_edge};
use crate::workspace::project;

/// The project-local pylsp (or `GATHERING_TEST_PYLSP`).
fn pylsp() -> String {
    let path = std::env::var("GATHERING_TEST_PYLSP")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.data/lsp/venv/bin/pylsp")
        });
    assert!(
        path.exists(),
        "pylsp is not installed at {}: run scripts/setup-lsp.sh",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn python_project() -> TempDir {
    let dir = TempDir::new();
    dir.write(
        "greetings.py",
        "def greet(name):\n    \"\"\"Say hello to someone.\"\"\"\n    return 'hello ' + name\n",
    );
    dir.write("main.py", "from greetings import greet\n\ngreet('you')\n");
    dir
}

async fn status(api: &Api, id: i64) -> Value {
    api.get(&format!("/lsp/{id}/status?language=python"), None)
        .await
        .body
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[tokio::test]
async fn python_completion_hover_definition_diagnostics_and_crash_restart() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let cmd = pylsp();
    let edge = start_edge(
        &db,
        &auth,
        &[("DISABLE_AUTH", "true"), ("LSP_PYTHON_COMMAND", &cmd)],
    )
    .await;
    let api = edge.api();
    let dir = python_project();
    let id = project(&api, None, &dir).await;
    assert_eq!(status(&api, id).await["active"], false);

    let r = api
        .post(
            &format!("/lsp/{id}/initialize"),
            None,
            &json!({"language": "python", "workspace_path": "/"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "initialized");
    assert!(
        r.body["capabilities"]["completionProvider"].is_object(),
        "{:?}",
        r.body
    );

    // Completion on unsaved content (the file on disk does not have this line).
    let r = api
        .post(
            &format!("/lsp/{id}/completions"),
            None,
            &json!({"file_path": "main.py", "line": 4, "character": 3,
                    "content": "from greetings import greet\nimport os\n\nos.pa"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let labels: Vec<&str> = r.body["completions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["label"].as_str())
        .collect();
    assert!(labels.iter().any(|l| l.starts_with("path")), "{labels:?}");
    assert_eq!(r.body["count"].as_u64(), Some(labels.len() as u64));

    // Hover and definition from the file on disk (no content): `greet` on line 3.
    let at = json!({"file_path": "main.py", "line": 3, "character": 2});
    let r = api.post(&format!("/lsp/{id}/hover"), None, &at).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["contents"]
            .to_string()
            .contains("Say hello to someone"),
        "{:?}",
        r.body
    );
    let r = api.post(&format!("/lsp/{id}/definition"), None, &at).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["path"], "greetings.py", "{:?}", r.body);
    assert_eq!(r.body["range"]["start"]["line"], 0);
    let r = api
        .post(
            &format!("/lsp/{id}/hover"),
            None,
            &json!({"file_path": "main.py", "line": 2, "character": 0}),
        )
        .await;
    assert_eq!(r.body, json!({"contents": null}));

    // Diagnostics: pyflakes on unsaved content, then on the fixed content.
    let r = api
        .post(
            &format!("/lsp/{id}/diagnostics"),
            None,
            &json!({"file_path": "main.py", "content": "import os\nprint(undefined_name)\n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let messages: Vec<&str> = r.body["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("undefined name 'undefined_name'")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("imported but unused")),
        "{messages:?}"
    );
    let r = api
        .post(
            &format!("/lsp/{id}/diagnostics"),
            None,
            &json!({"file_path": "main.py", "content": "print('fine')\n"}),
        )
        .await;
    assert_eq!(r.body["count"], 0, "{:?}", r.body);
    let r = api
        .post(
            &format!("/lsp/{id}/diagnostics"),
            None,
            &json!({"file_path": "../etc/passwd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Crash: kill -9 the server; the next request starts a new one.
    let s = status(&api, id).await;
    assert_eq!(s["active"], true);
    let pid = s["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(10, || async { status(&api, id).await["active"] == false }).await);
    let r = api.post(&format!("/lsp/{id}/hover"), None, &at).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["contents"]
            .to_string()
            .contains("Say hello to someone")
    );
    let restarted = status(&api, id).await["pid"].as_i64().unwrap();
    assert_ne!(restarted, pid);

    let r = api
        .send(
            api.client
                .delete(format!("{}/lsp/{id}/shutdown?language=python", api.base)),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"status": "shutdown", "project_id": id, "language": "python"})
    );
    assert_eq!(status(&api, id).await["active"], false);
    assert!(
        eventually(10, || async { !alive(restarted) }).await,
        "the server process is gone"
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn idle_servers_stop_and_absent_servers_are_an_error() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let cmd = pylsp();
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("LSP_PYTHON_COMMAND", &cmd),
            ("LSP_IDLE_SECONDS", "1"),
            ("LSP_RUST_COMMAND", "/nonexistent/rust-analyzer"),
        ],
    )
    .await;
    let api = edge.api();
    let dir = python_project();
    let id = project(&api, None, &dir).await;
    let r = api
        .post(
            &format!("/lsp/{id}/completions"),
            None,
            &json!({"file_path": "main.py", "line": 3, "character": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let pid = status(&api, id).await["pid"].as_i64().unwrap();
    assert!(
        eventually(10, || async { status(&api, id).await["active"] == false }).await,
        "shut down when idle"
    );
    assert!(eventually(10, || async { !alive(pid) }).await);

    let r = api
        .post(
            &format!("/lsp/{id}/completions?language=rust"),
            None,
            &json!({"file_path": "main.rs", "line": 1, "character": 0, "content": "fn main() {}"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("not installed"),
        "{:?}",
        r.body
    );
    let r = api
        .post(
            &format!("/lsp/{id}/completions?language=cobol"),
            None,
            &json!({"file_path": "main.py", "line": 1, "character": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    edge.stop().await;
    auth.stop().await;
}
