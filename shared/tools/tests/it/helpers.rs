//! Shared test fixtures: throwaway project folders, a toolbox, call contexts, and a real HTTP
//! receiver on 127.0.0.1 that records every request (webhook bodies, SSRF probes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gathering_tools::net::Allowlist;
use gathering_tools::{CallContext, Grants, ProjectRoot, Toolbox, ToolsConfig};
use serde_json::Value;

/// A folder that is removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("gt-tools-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(std::fs::canonicalize(p).unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn root(&self) -> ProjectRoot {
        ProjectRoot::new(&self.0).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn config(allow: &str) -> ToolsConfig {
    ToolsConfig {
        http_allowlist: Allowlist::parse(allow).unwrap(),
        ..ToolsConfig::default()
    }
}

/// A toolbox without a database (no enablement, no GatheRing-domain skills).
pub fn toolbox(allow: &str) -> Toolbox {
    Toolbox::new(None, config(allow)).unwrap()
}

/// Every permission, confirmed, in `root`.
pub fn ctx(root: Option<&TempDir>) -> CallContext {
    CallContext::new(Grants::all())
        .confirmed(true)
        .project(root.map(TempDir::root))
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A real HTTP server on 127.0.0.1 that records requests. Routes:
/// - `/redirect?to=URL&status=302`: redirects;
/// - `/page`: an HTML page; `/json`: `{"hello": "world", "items": [1, 2]}`;
/// - `/slow?ms=N`: answers after N ms; `/big?n=N`: N bytes;
/// - `/status/N`: answers N;
/// - anything else: 200 `ok`.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Shared::default();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests were seen (webhooks are awaited by the tool, so this is
    /// immediate; the wait only guards against scheduling).
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        for _ in 0..100 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.seen()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><title>Test  Page</title><meta charset="utf-8">
<meta name="description" content="A page for tests"><meta name="keywords" content="a, b">
<meta property="og:title" content="OG Title"><meta name="twitter:card" content="summary">
<link rel="canonical" href="/canonical"><link rel="icon" href="/favicon.ico">
<style>body { color: red }</style><script>var secret = "script text";</script></head>
<body><nav><a href="/home">Home nav</a></nav>
<article><h1>Main heading</h1><p>First paragraph with <b>bold</b> text.<p>Second paragraph.
<ul><li>one<li>two</ul>
<a href="/about">About us</a> <a href="https://external.example/x">External</a> <a href="/about">dup</a>
<a href="javascript:alert(1)">js</a></article>
<table><caption>Scores</caption><tr><th>Name<th>Score</tr><tr><td>Ann<td>10</tr><tr><td>Bob<td>7</table>
<footer>Footer text</footer></body></html>"#;

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    let path = uri.path();
    if path == "/redirect" {
        let status = q.get("status").and_then(|s| s.parse().ok()).unwrap_or(302);
        return Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header(header::LOCATION, q.get("to").cloned().unwrap_or_default())
            .body(axum::body::Body::empty())
            .unwrap();
    }
    if path == "/page" {
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    }
    if path == "/json" {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"hello": "world", "items": [1, 2]}"#,
        )
            .into_response();
    }
    if path == "/echo" {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    if path == "/slow" {
        let ms = q.get("ms").and_then(|s| s.parse().ok()).unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return "slow".into_response();
    }
    if path == "/big" {
        let n = q.get("n").and_then(|s| s.parse().ok()).unwrap_or(1000);
        return "x".repeat(n).into_response();
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code = code.parse().unwrap_or(500);
        return (StatusCode::from_u16(code).unwrap(), "status").into_response();
    }
    "ok".into_response()
}
