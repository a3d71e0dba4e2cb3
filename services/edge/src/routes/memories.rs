//! `/memories` (contract §2.8): agents' long-term memories and the shared knowledge base, with
//! embeddings from the LLM gateway when it can embed and text search otherwise (every search
//! answer says which it used, as `method`), and document upload with A6 chunking.

mod agent;
mod chunk;
mod extract;
mod knowledge;
mod upload;

use actix_web::web;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    agent::remember,
    agent::remember_batch,
    agent::recall,
    agent::forget,
    agent::stats,
    knowledge::create,
    knowledge::list,
    knowledge::search,
    knowledge::stats,
    upload::upload,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/memories/agents/{agent_id}/remember",
        web::post().to(agent::remember),
    )
    .route(
        "/memories/agents/{agent_id}/remember/batch",
        web::post().to(agent::remember_batch),
    )
    .route(
        "/memories/agents/{agent_id}/recall",
        web::post().to(agent::recall),
    )
    .route(
        "/memories/agents/{agent_id}/memories/{memory_id}",
        web::delete().to(agent::forget),
    )
    .route(
        "/memories/agents/{agent_id}/stats",
        web::get().to(agent::stats),
    )
    .route("/memories/knowledge", web::post().to(knowledge::create))
    .route("/memories/knowledge", web::get().to(knowledge::list))
    .route(
        "/memories/knowledge/search",
        web::post().to(knowledge::search),
    )
    .route("/memories/knowledge/stats", web::get().to(knowledge::stats))
    .route("/memories/knowledge/upload", web::post().to(upload::upload));
}
