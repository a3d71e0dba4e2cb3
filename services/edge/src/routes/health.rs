//! `/health`, `/health/ready`, `/health/live`, `/metrics`, and the dashboard's monitoring
//! routes `/health/system` and `/health/checks` (contract §2.1; see `crate::monitoring`).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(health, ready, live, system, checks, metrics))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/health/ready", web::get().to(ready))
        .route("/health/live", web::get().to(live))
        .route("/health/system", web::get().to(system))
        .route("/health/checks", web::get().to(checks))
        .route("/metrics", web::get().to(metrics));
}

/// Service status and counts.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "`{status, version, uptime_seconds, agents_count, circles_count, active_tasks}`", body = Object),
))]
async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM agent.agents WHERE is_active) AS agents, \
                    (SELECT count(*) FROM circle.circles WHERE is_active) AS circles, \
                    (SELECT count(*) FROM circle.background_tasks WHERE status = 'running') AS tasks",
            &[],
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "healthy",
        "version": gathering_core::VERSION,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "agents_count": row.try_get::<_, i64>("agents")?,
        "circles_count": row.try_get::<_, i64>("circles")?,
        "active_tasks": row.try_get::<_, i64>("tasks")?,
    })))
}

/// Readiness: ready once access tokens can be verified.
#[utoipa::path(get, path = "/health/ready", responses(
    (status = 200, description = "`{\"ready\": true}`", body = Object),
    (status = 503, description = "`{\"ready\": false, \"reason\": \"starting\"|\"shutting_down\"}`", body = Value),
))]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.is_ready() {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        // Not ready before the signing keys arrive (start-up) or once stopping.
        let reason = if state.shutdown.is_triggered() {
            "shutting_down"
        } else {
            "starting"
        };
        HttpResponse::ServiceUnavailable().json(json!({"ready": false, "reason": reason}))
    }
}

/// Liveness.
#[utoipa::path(get, path = "/health/live", responses(
    (status = 200, description = "`{\"alive\": true}`", body = Object),
))]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"alive": true}))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
))]
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(gathering_telemetry::prometheus().render())
}

/// Host and process figures (CPU, memory, disk, load); sampled on the blocking pool (CPU usage
/// needs two readings).
#[utoipa::path(get, path = "/health/system", responses(
    (status = 200, description = "Host and process figures", body = Object),
))]
async fn system(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let monitor = state.monitor.clone();
    let figures =
        tokio::task::spawn_blocking(move || monitor.sampler.sample(std::path::Path::new("/")))
            .await
            .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(figures))
}

/// The dependencies' checks (database, services) with their latencies.
#[utoipa::path(get, path = "/health/checks", responses(
    (status = 200, description = "One entry per check", body = Object),
))]
async fn checks(state: web::Data<AppState>, _user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(crate::monitoring::checks::run(&state).await)
}
