//! `GET /` (contract §1).

use actix_web::HttpResponse;
use serde_json::json;

pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "GatheRing API",
        "version": gathering_core::VERSION,
        "docs": "/docs",
        "health": "/health",
    }))
}
