//! `/tools` (contract §2.15): the skill catalogue (`agent.skills`) and per-agent enablement
//! (`agent.agent_tools`), plus the registry itself: `GET /tools` lists every tool with its
//! input schema and `POST /tools/execute` runs one with validated input and answers the
//! contract's `SkillResponse`.
mod agents;
mod execute;
mod registry;
mod skills;

use actix_web::web;
use gathering_tools::{ToolError, enablement};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, FieldError};

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    registry::list_tools,
    registry::stats,
    execute::execute,
    skills::list_skills,
    skills::categories,
    agents::agent_tools,
    agents::enabled,
    agents::bulk,
    agents::enable_all,
    agents::disable_all,
    agents::set_skill
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tools", web::get().to(registry::list_tools))
        .route("/tools/stats", web::get().to(registry::stats))
        .route("/tools/execute", web::post().to(execute::execute))
        .route("/tools/skills", web::get().to(skills::list_skills))
        .route(
            "/tools/skills/categories",
            web::get().to(skills::categories),
        )
        .route(
            "/tools/agents/{agent_id}",
            web::get().to(agents::agent_tools),
        )
        .route(
            "/tools/agents/{agent_id}/enabled",
            web::get().to(agents::enabled),
        )
        .route(
            "/tools/agents/{agent_id}/skills/bulk",
            web::post().to(agents::bulk),
        )
        .route(
            "/tools/agents/{agent_id}/skills/enable-all",
            web::post().to(agents::enable_all),
        )
        .route(
            "/tools/agents/{agent_id}/skills/disable-all",
            web::post().to(agents::disable_all),
        )
        .route(
            "/tools/agents/{agent_id}/skills/{skill_name}",
            web::patch().to(agents::set_skill),
        );
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CategoryQuery {
    /// Only the skills of this category.
    category: Option<String>,
}

/// 422 for a `category` query with a NUL character, which names no category (and which the
/// database, unable to store one, is not asked about).
fn check_category(q: &CategoryQuery) -> Result<(), ApiError> {
    if q.category.as_ref().is_some_and(|c| c.contains('\0')) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "category",
            "must not contain the NUL character (\\u0000)",
        )]));
    }
    Ok(())
}

/// Enablement store failures are ours (500).
fn db(e: ToolError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The agent's name; 404 when there is no such agent.
async fn agent_name(client: &gathering_db::Client, agent_id: i64) -> Result<String, ApiError> {
    enablement::agent_name(client, agent_id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::NotFound(format!("Agent {agent_id} not found")))
}
