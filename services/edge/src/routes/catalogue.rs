//! The catalogue (contract §2.4): LLM providers, models, personas, and the agents as the
//! database views show them (`/agents-db`). Raw rows, persisted in `agent.*`; `/agents` (§2.3)
//! reads and writes the same rows.
//!
//! Quirks the contract keeps: `DELETE /providers/{id}` and `DELETE /models/{id}` answer 204
//! even when nothing was deleted; a builtin persona cannot be deleted (400); a provider name is
//! stored lower-cased.

mod agents_db;
pub(super) mod input;
mod models;
mod personas;
mod providers;
pub(super) mod rows;

use actix_web::web;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    providers::list,
    providers::create,
    providers::get,
    providers::delete,
    models::list,
    models::create,
    models::get,
    models::update,
    models::delete,
    personas::list,
    personas::create,
    personas::get,
    personas::update,
    personas::delete,
    agents_db::list,
    agents_db::get,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/providers", web::get().to(providers::list))
        .route("/providers", web::post().to(providers::create))
        .route("/providers/{provider_id}", web::get().to(providers::get))
        .route(
            "/providers/{provider_id}",
            web::delete().to(providers::delete),
        )
        .route("/models", web::get().to(models::list))
        .route("/models", web::post().to(models::create))
        .route("/models/{model_id}", web::get().to(models::get))
        .route("/models/{model_id}", web::patch().to(models::update))
        .route("/models/{model_id}", web::delete().to(models::delete))
        .route("/personas", web::get().to(personas::list))
        .route("/personas", web::post().to(personas::create))
        .route("/personas/{persona_id}", web::get().to(personas::get))
        .route("/personas/{persona_id}", web::patch().to(personas::update))
        .route("/personas/{persona_id}", web::delete().to(personas::delete))
        .route("/agents-db", web::get().to(agents_db::list))
        .route("/agents-db/{agent_id}", web::get().to(agents_db::get));
}
