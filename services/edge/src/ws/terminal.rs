//! `/ws/terminal/{project_id}` (contract §4.2): the WebSocket side of a web terminal.
//!
//! Authenticated like `/ws` (`?token=`, closed with 1008 when missing or invalid, skipped only
//! in no-auth development mode), then gated by `GATHERING_WORKSPACE_EXEC` (1008 when refused)
//! and the terminal limits (1013 when full). Client frames are JSON text:
//! `{"type":"input","data":"ls\r"}` and `{"type":"resize","rows":24,"cols":80}`; the
//! terminal's output goes back as raw text frames. The terminal closes when the client leaves,
//! after `TERMINAL_IDLE_SECONDS` without input, when the shell exits, or when the edge shuts
//! down; then every process it started is killed (see [`crate::terminal`]).

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::state::AppState;
use crate::terminal::{self, Shell, Slot};
use crate::workspace::{exec_allowed, project_root};

const MAX_FRAME: usize = 64 * 1024;
const PING_EVERY: Duration = Duration::from_secs(25);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TerminalQuery {
    token: Option<String>,
}

async fn refuse(session: Session, code: CloseCode, why: String) {
    let _ = session
        .close(Some(CloseReason {
            code,
            description: Some(why),
        }))
        .await;
}

/// A web terminal in the project's folder (contract §4.2).
#[utoipa::path(get, path = "/ws/terminal/{project_id}", params(("project_id" = i64, Path, description = "Project id"), TerminalQuery), responses(
    (status = 101, description = "Switched to the WebSocket protocol (a refused token closes with 1008)"),
    (status = 400, description = "Not a WebSocket upgrade request"),
))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    project_id: web::Path<i64>,
    query: web::Query<TerminalQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let project_id = project_id.into_inner();
    // Who is calling, checked before the upgrade.
    let caller = if state.config.disable_auth && state.config.env.is_development() {
        Some(("dev".to_owned(), true))
    } else {
        match crate::auth::session_cookie::ws_token(
            req.headers(),
            &state.config,
            query.token.as_deref(),
        ) {
            Some(t) => state
                .verifier
                .verify(t)
                .await
                .ok()
                .map(|c| (c.sub.clone(), c.is_admin())),
            None => None,
        }
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let Some((user, is_admin)) = caller else {
            return refuse(
                session,
                CloseCode::Policy,
                "Invalid or missing token".into(),
            )
            .await;
        };
        if let Err(why) = exec_allowed(&state, is_admin) {
            return refuse(session, CloseCode::Policy, why).await;
        }
        let root = match project_root(&state, project_id).await {
            Ok(r) => r,
            Err(e) => return refuse(session, CloseCode::Policy, e.to_string()).await,
        };
        let slot = match state.workspace.terminals.acquire(&user) {
            Ok(s) => s,
            Err(why) => return refuse(session, CloseCode::Again, why.into()).await,
        };
        let shell = match terminal::spawn(&state.workspace.config.shell, root.path(), 24, 80) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a terminal shell");
                return refuse(session, CloseCode::Error, "Cannot start a shell".into()).await;
            }
        };
        tracing::info!(project_id, user = %user, sid = shell.sid, "terminal opened");
        run(&state, session, stream, shell, slot).await;
    });
    Ok(response)
}

/// Bytes that may be the start of a UTF-8 sequence cut by a read are kept for the next one.
fn take_text(pending: &mut Vec<u8>) -> String {
    match std::str::from_utf8(pending) {
        Ok(s) => {
            let s = s.to_owned();
            pending.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let s = String::from_utf8_lossy(&pending[..valid]).into_owned();
            pending.drain(..valid);
            s
        }
        Err(_) => {
            let s = String::from_utf8_lossy(pending).into_owned();
            pending.clear();
            s
        }
    }
}

enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Ignore,
}

fn parse_input(text: &str) -> Input {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return Input::Ignore;
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("input") => msg
            .get("data")
            .and_then(Value::as_str)
            .map_or(Input::Ignore, |d| Input::Data(d.as_bytes().to_vec())),
        Some("resize") => {
            let dim = |k: &str, d: u64| {
                msg.get(k)
                    .and_then(Value::as_u64)
                    .unwrap_or(d)
                    .clamp(1, 1000) as u16
            };
            Input::Resize(dim("rows", 24), dim("cols", 80))
        }
        _ => Input::Ignore,
    }
}

async fn run(
    state: &AppState,
    session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    shell: Shell,
    slot: Slot,
) {
    let Shell {
        mut child,
        pty,
        sid,
    } = shell;
    let guard = terminal::SessionGuard(sid);
    let (mut reader, mut writer) = pty.into_split();
    let idle = state.workspace.config.terminal_idle;
    let mut session_out = session.clone();
    let mut last_input = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let reason = loop {
        let idle_at = tokio::time::Instant::from_std(last_input + idle);
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break CloseReason { code: CloseCode::Normal, description: Some("shell exited".into()) },
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    let text = take_text(&mut pending);
                    if !text.is_empty() && session_out.text(text).await.is_err() {
                        break CloseReason::from(CloseCode::Normal);
                    }
                }
            },
            msg = stream.next() => match msg {
                Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                    last_input = Instant::now();
                    match parse_input(&text) {
                        Input::Data(d) => { if writer.write_all(&d).await.is_err() { break CloseReason::from(CloseCode::Normal); } }
                        Input::Resize(r, c) => { let _ = writer.resize(pty_process::Size::new(r, c)); }
                        Input::Ignore => {}
                    }
                }
                Some(Ok(actix_ws::AggregatedMessage::Binary(bytes))) => {
                    last_input = Instant::now();
                    if writer.write_all(&bytes).await.is_err() { break CloseReason::from(CloseCode::Normal); }
                }
                Some(Ok(actix_ws::AggregatedMessage::Ping(b))) => { let _ = session_out.pong(&b).await; }
                Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {}
                Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => {
                    break CloseReason::from(CloseCode::Normal);
                }
            },
            _ = child.wait() => break CloseReason { code: CloseCode::Normal, description: Some("shell exited".into()) },
            _ = tokio::time::sleep_until(idle_at) => {
                break CloseReason { code: CloseCode::Normal, description: Some("idle timeout".into()) };
            }
            _ = ping.tick() => { let _ = session_out.ping(b"").await; }
            _ = state.shutdown.wait() => {
                break CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) };
            }
        }
    };
    // Kill everything first, then say goodbye: nothing the client does can keep it alive.
    let _ = tokio::task::spawn_blocking(move || drop(guard)).await;
    let _ = child.wait().await;
    drop(slot);
    tracing::info!(sid, reason = ?reason.description, "terminal closed");
    let _ = session.close(Some(reason)).await;
}
