//! `GET /` (contract §1).

use actix_web::HttpResponse;
use serde_json::json;

#[derive(utoipa::OpenApi)]
#[openapi(paths(index))]
pub(crate) struct Api;

/// The API's name and version, and where the docs and health are.
#[utoipa::path(get, path = "/", responses(
    (status = 200, description = "`{name, version, docs, health}`", body = Object),
))]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "GatheRing API",
        "version": gathering_core::VERSION,
        "docs": "/docs",
        "health": "/health",
    }))
}
