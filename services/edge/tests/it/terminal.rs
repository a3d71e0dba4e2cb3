//! `/ws/terminal/{id}`: a real shell on a PTY in the project directory; nothing it started
//! survives the socket; tokens, the execution gate and the limits are enforced.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gathering_testkit::TestDb;
use gathering_testkit::ws::{self, Next, Socket};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::projects::TempDir;
use crate::support::{eventually, sign, start_auth, start_edge};
use crate::workspace::project;

fn url(base: &str, id: i64, query: &str) -> String {
    format!("{}/ws/terminal/{id}{query}", base.replacen("http", "ws", 1))
}

async fn input(socket: &mut Socket, data: &str) {
    ws::send_json(socket, &json!({"type": "input", "data": data})).await;
}

/// Reads raw output frames until `pred` holds on everything read; returns it.
async fn read_until(socket: &mut Socket, pred: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !pred(&seen) {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => seen.push_str(&t),
            Ok(Some(Ok(Message::Close(f)))) => panic!("closed {f:?}; output so far: {seen}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("no more output ({other:?}); so far: {seen}"),
        }
    }
    seen
}

/// The number after `label` (as `label=123`), once it is printed.
fn number_after(text: &str, label: &str) -> Option<i32> {
    let start = text.rfind(&format!("{label}="))? + label.len() + 1;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Gone, or a zombie waiting for a reaper that is not ours.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_terminal_runs_in_the_project_and_leaves_no_process_behind() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[("DISABLE_AUTH", "true"), ("TERMINAL_SHELL", "/bin/bash")],
    )
    .await;
    let api = edge.api();
    let dir = TempDir::new();
    let id = project(&api, None, &dir).await;
    let mut socket = ws::connect(&url(&edge.base, id, "")).await;
    ws::send_json(
        &mut socket,
        &json!({"type": "resize", "rows": 40, "cols": 120}),
    )
    .await;
    input(&mut socket, "stty size; pwd; echo SH=$$\r").await;
    let out = read_until(&mut socket, |s| number_after(s, "SH").is_some()).await;
    assert!(out.contains("40 120"), "{out}");
    assert!(
        out.contains(dir.str()),
        "runs in the project directory: {out}"
    );
    assert!(!out.contains("DATABASE_URL"));
    let shell = number_after(&out, "SH").unwrap();
    // A background job (its own process group) and a foreground command.
    input(&mut socket, "sleep 300 & echo BG=$!\r").await;
    let out = read_until(&mut socket, |s| number_after(s, "BG").is_some()).await;
    let bg = number_after(&out, "BG").unwrap();
    input(
        &mut socket,
        "env | grep -c GATHERING_MASTER_KEY; sleep 301\r",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !dead(shell) && !dead(bg),
        "the shell and its job run while connected"
    );

    socket.close(None).await.unwrap();
    drop(socket);
    assert!(
        eventually(10, || async { dead(shell) && dead(bg) }).await,
        "shell {shell} and job {bg} were killed when the client left"
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn an_idle_terminal_is_closed() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("TERMINAL_IDLE_SECONDS", "3"),
            ("TERMINAL_SHELL", "/bin/bash"),
        ],
    )
    .await;
    let dir = TempDir::new();
    let id = project(&edge.api(), None, &dir).await;
    let mut socket = ws::connect(&url(&edge.base, id, "")).await;
    input(&mut socket, "echo SH=$$\r").await;
    let out = read_until(&mut socket, |s| number_after(s, "SH").is_some()).await;
    let shell = number_after(&out, "SH").unwrap();
    let reason = loop {
        match socket.next().await {
            Some(Ok(Message::Close(f))) => break f.map(|f| f.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(reason.as_deref(), Some("idle timeout"));
    assert!(eventually(10, || async { dead(shell) }).await);
    edge.stop().await;
    auth.stop().await;
}

async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match ws::next(socket, Duration::from_secs(10)).await {
            Next::Closed(Some(f)) => return u16::from(f.code),
            Next::Closed(None) => return 0,
            Next::Json(_) => continue,
        }
    }
}

#[tokio::test]
async fn tokens_the_execution_gate_and_limits() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(
        &db,
        &auth,
        &[
            ("GATHERING_WORKSPACE_EXEC", "admin"),
            ("TERMINAL_MAX_PER_USER", "1"),
            ("TERMINAL_SHELL", "/bin/bash"),
        ],
    )
    .await;
    let api = edge.api();
    let (user_token, _) = api.user("dev@example.com", "a long password 1").await;
    let dir = TempDir::new();
    let id = project(&api, Some(&user_token), &dir).await;

    for query in [
        "".to_owned(),
        "?token=garbage".into(),
        format!("?token={user_token}"),
    ] {
        let mut s = ws::connect(&url(&edge.base, id, &query)).await;
        assert_eq!(close_code(&mut s).await, 1008, "{query}");
    }
    let now = chrono::Utc::now().timestamp();
    let claims = gathering_core::claims::AccessClaims {
        iss: "gathering".into(),
        aud: "gathering-api".into(),
        sub: "admin-1".into(),
        email: "admin@example.com".into(),
        role: "admin".into(),
        iat: now,
        iat_ms: now * 1000,
        exp: now + 600,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let admin = sign(&db, &claims).await;
    let mut first = ws::connect(&url(&edge.base, id, &format!("?token={admin}"))).await;
    input(&mut first, "echo READY\r").await;
    read_until(&mut first, |s| s.contains("READY\r\n")).await;
    let mut second = ws::connect(&url(&edge.base, id, &format!("?token={admin}"))).await;
    assert_eq!(close_code(&mut second).await, 1013, "one terminal per user");
    let mut missing = ws::connect(&url(&edge.base, 999_999, &format!("?token={admin}"))).await;
    assert_eq!(close_code(&mut missing).await, 1008);
    first.send(Message::Close(None)).await.unwrap();
    edge.stop().await;
    auth.stop().await;
}
