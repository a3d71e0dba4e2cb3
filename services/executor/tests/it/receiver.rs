//! A local HTTP receiver that pipeline actions call: it records every request (path, method,
//! `Idempotency-Key`, JSON body), answers by a per-path script (status, delay, barrier), and
//! notes requests whose caller went away before the answer (a cancelled node).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub method: String,
    pub key: Option<String>,
    pub body: Value,
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Step {
    pub status: u16,
    pub delay: Duration,
    /// Answer only once this many requests to this path arrived (5 s at most, else 504):
    /// proves that callers were in flight at the same time.
    pub barrier: Option<usize>,
}

impl Step {
    pub fn status(status: u16) -> Step {
        Step {
            status,
            delay: Duration::ZERO,
            barrier: None,
        }
    }

    pub fn delay(mut self, d: Duration) -> Step {
        self.delay = d;
        self
    }

    pub fn barrier(mut self, n: usize) -> Step {
        self.barrier = Some(n);
        self
    }
}

#[derive(Default)]
struct Inner {
    hits: Mutex<Vec<Hit>>,
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    defaults: Mutex<HashMap<String, Step>>,
    dropped: Mutex<Vec<(String, Instant)>>,
    changed: Notify,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

struct DropGuard {
    inner: Arc<Inner>,
    path: String,
    done: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut d) = self.inner.dropped.lock() {
                d.push((self.path.clone(), Instant::now()));
            }
            self.inner.changed.notify_waiters();
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_owned();
    let hit = Hit {
        path: path.clone(),
        method: method.to_string(),
        key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = {
        let mut hits = inner.hits.lock().unwrap();
        hits.push(hit);
        hits.iter().filter(|h| h.path == path).count()
    };
    inner.changed.notify_waiters();
    let step = inner
        .scripts
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .or_else(|| inner.defaults.lock().unwrap().get(&path).cloned())
        .unwrap_or(Step::status(200));
    let mut guard = DropGuard {
        inner: inner.clone(),
        path: path.clone(),
        done: false,
    };
    tokio::time::sleep(step.delay).await;
    if let Some(want) = step.barrier {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = inner.changed.notified();
            let count = inner
                .hits
                .lock()
                .unwrap()
                .iter()
                .filter(|h| h.path == path)
                .count();
            if count >= want {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                guard.done = true;
                return (
                    StatusCode::GATEWAY_TIMEOUT,
                    axum::Json(json!({"error": "barrier"})),
                );
            }
        }
    }
    guard.done = true;
    let status = StatusCode::from_u16(step.status).unwrap_or(StatusCode::OK);
    (
        status,
        axum::Json(json!({"ok": status.is_success(), "path": path, "n": n, "value": 42})),
    )
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next answers of `path`, in order; then its default.
    pub fn script(&self, path: &str, steps: Vec<Step>) {
        self.inner
            .scripts
            .lock()
            .unwrap()
            .insert(path.into(), steps.into());
    }

    pub fn set_default(&self, path: &str, step: Step) {
        self.inner
            .defaults
            .lock()
            .unwrap()
            .insert(path.into(), step);
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.inner
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    pub fn all_hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().unwrap().clone()
    }

    pub fn dropped(&self, path: &str) -> Vec<Instant> {
        self.inner
            .dropped
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Waits until `path` got `n` requests; false after `timeout`.
    pub async fn wait_hits(&self, path: &str, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            if self.hits(path).len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.hits(path).len() >= n;
            }
        }
    }

    /// Waits until a request to `path` was abandoned by its caller.
    pub async fn wait_dropped(&self, path: &str, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            if let Some(t) = self.dropped(path).first() {
                return Some(*t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.dropped(path).first().copied();
            }
        }
    }
}
