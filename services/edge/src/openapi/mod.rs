//! The OpenAPI 3.1 document (`GET /openapi.json`) and the offline API reference (`GET /docs`,
//! contract §1: both public).
//!
//! The document is generated from the code with utoipa. The convention (also in the team's
//! notes, `openapi-convention.md`):
//!
//! - Every handler registered in a route module's `configure` carries `#[utoipa::path(...)]`:
//!   the method, `path` exactly as given to `.route(..)` (without the `/api` prefix: every route
//!   is also served under `/api`, which the document's description says), `params` (path
//!   parameters as `("name" = i64, Path, description = "..")`, query structs deriving
//!   `utoipa::IntoParams` with `#[into_params(parameter_in = Query)]`), `request_body` (a type
//!   deriving `utoipa::ToSchema`, or `Value`), and `responses`: the success answer(s) and the
//!   specific errors, with [`Detail`] or [`ValidationErrors`] as body.
//! - Handlers write no `tag`, `operation_id` nor `security`: [`document`] sets them (tag = the
//!   route module's name, operationId from method and path, security from the auth
//!   middleware's public-route list, so the document cannot disagree with what is enforced). It
//!   also adds the errors every operation can answer when the handler does not list them: 401
//!   (non-public operations), 422 (operations with parameters or a body: extractor failures),
//!   429 (rate limits) and 500.
//! - Each route module defines `#[derive(utoipa::OpenApi)] #[openapi(paths(..))] pub(crate)
//!   struct Api;` listing its handlers; `routes::openapi_modules` lists the modules, and
//!   [`document`] merges them.
//! - A response schema is never stricter than what the handler returns (Schemathesis checks
//!   conformance): answers built with `json!` are typed where cheap, otherwise documented as an
//!   object (`Value`) whose fields the description names.
//!
//! The test `openapi` in the edge's integration tests fails when a registered route (any
//! `.route("literal", web::METHOD()` in the sources) is missing from the document, or the
//! document names a route that is not registered.

mod docs;
mod document;

use actix_web::{HttpResponse, web};
use serde::Serialize;

pub use document::document;

/// Security scheme of access tokens: `Authorization: Bearer <JWT>`.
pub const BEARER: &str = "bearer";

/// An error answer: `{"detail": "..."}` (every error status but 422).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// What went wrong, for people.
    pub detail: String,
}

/// A validation failure (422): `{"detail": [{loc, msg, type}]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ValidationErrors {
    pub detail: Vec<crate::error::FieldError>,
}

/// `/openapi.json` and `/docs` (served at the root and under `/api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs::index))
        .route("/docs/", web::get().to(docs::index))
        .route("/docs/{asset}", web::get().to(docs::asset));
}

/// The document, serialised once.
fn json_bytes() -> &'static [u8] {
    static JSON: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    JSON.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default())
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "no-cache"))
        .body(json_bytes())
}
