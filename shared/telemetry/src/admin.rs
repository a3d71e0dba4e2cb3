//! Admin HTTP endpoints: health, readiness, liveness and metrics.
//!
//! Services without a public HTTP server of their own (executor, scheduler) serve these on an
//! admin port; the gRPC services serve them on their gRPC port next to the gRPC health service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use gathering_core::{Readiness, Shutdown};
use serde_json::json;

#[derive(Clone)]
pub struct AdminState {
    pub service: &'static str,
    pub readiness: Readiness,
    pub started: Instant,
    /// Extra fields for `/health` (queue depth, running jobs…), computed on request.
    pub details: Option<Arc<dyn Fn() -> serde_json::Value + Send + Sync>>,
}

impl AdminState {
    pub fn new(service: &'static str, readiness: Readiness) -> Self {
        Self {
            service,
            readiness,
            started: Instant::now(),
            details: None,
        }
    }
}

pub fn admin_router(state: AdminState) -> Router {
    // Install the recorder now: metrics recorded before the first scrape would otherwise be lost.
    let _ = crate::prometheus();
    Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/health/live", get(live))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = json!({
        "status": if state.readiness.is_ready() { "healthy" } else { "starting_or_stopping" },
        "service": state.service,
        "version": gathering_core::VERSION,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    });
    if let (Some(details), Some(map)) = (&state.details, body.as_object_mut())
        && let serde_json::Value::Object(extra) = details()
    {
        map.extend(extra);
    }
    Json(body)
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "shutting_down"})),
        )
    }
}

async fn live() -> impl IntoResponse {
    Json(json!({"alive": true}))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::prometheus().render(),
    )
}

/// A running admin server. It outlives the service's own shutdown signal so that
/// `/health/ready` can answer 503 while work drains; `stop` ends it last.
pub struct AdminServer {
    pub addr: SocketAddr,
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Serves the admin endpoints of `service` on `addr`.
    pub async fn start(addr: SocketAddr, state: AdminState) -> std::io::Result<AdminServer> {
        let stop = Shutdown::new();
        let (addr, task) = serve_admin(addr, admin_router(state), stop.clone()).await?;
        Ok(AdminServer { addr, stop, task })
    }

    pub async fn stop(self) {
        self.stop.trigger();
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the admin router until `shutdown`. Returns the bound address
/// (useful with port 0) and the server task.
pub async fn serve_admin(
    addr: SocketAddr,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok((local, task))
}
