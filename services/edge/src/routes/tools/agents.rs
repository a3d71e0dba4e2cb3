//! Per-agent enablement (`agent.agent_tools`): which skills an agent may use, one skill, a list
//! of them or a whole category at a time.

use actix_web::{HttpResponse, web};
use gathering_tools::enablement;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{CategoryQuery, agent_name, check_category, db};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// Most skills one bulk request changes.
const MAX_BULK: usize = 100;
#[derive(Serialize, ToSchema)]
pub struct AgentTools {
    agent_id: i64,
    agent_name: String,
    /// Each skill with `is_enabled` for the agent.
    tools: Vec<Value>,
    enabled_count: usize,
    total_count: usize,
}

/// Every skill and whether it is enabled for the agent.
#[utoipa::path(
    get,
    path = "/tools/agents/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent's skills", body = AgentTools),
        (status = 404, description = "No such agent", body = Detail),
    ),
)]
pub async fn agent_tools(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    let client = state.pool.get().await?;
    let name = agent_name(&client, agent_id).await?;
    let tools = enablement::agent_tools(&client, agent_id)
        .await
        .map_err(db)?;
    let enabled = tools
        .iter()
        .filter(|t| t["is_enabled"] == json!(true))
        .count();
    Ok(HttpResponse::Ok().json(AgentTools {
        agent_id,
        agent_name: name,
        total_count: tools.len(),
        tools,
        enabled_count: enabled,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct EnabledSkills {
    agent_id: i64,
    enabled_skills: Vec<String>,
}

/// The names of the skills enabled for the agent.
#[utoipa::path(
    get,
    path = "/tools/agents/{agent_id}/enabled",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The enabled skills", body = EnabledSkills),
        (status = 404, description = "No such agent", body = Detail),
    ),
)]
pub async fn enabled(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    let skills = enablement::enabled_skills(&client, agent_id)
        .await
        .map_err(db)?;
    Ok(HttpResponse::Ok().json(EnabledSkills {
        agent_id,
        enabled_skills: skills,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleBody {
    is_enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SkillToggled {
    agent_id: i64,
    skill_name: String,
    is_enabled: bool,
    message: String,
}

/// Enables or disables one skill for the agent.
#[utoipa::path(
    patch,
    path = "/tools/agents/{agent_id}/skills/{skill_name}",
    params(
        ("agent_id" = i64, Path, description = "Agent id"),
        ("skill_name" = String, Path, description = "Skill name"),
    ),
    request_body = ToggleBody,
    responses(
        (status = 200, description = "The skill's new state", body = SkillToggled),
        (status = 404, description = "No such agent or skill", body = Detail),
    ),
)]
pub async fn set_skill(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, String)>,
    body: web::Json<ToggleBody>,
) -> Result<HttpResponse, ApiError> {
    let (agent_id, skill) = path.into_inner();
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    // No skill name holds a NUL character (the database could not store one).
    if skill.contains('\0')
        || !enablement::set_skill(&client, agent_id, &skill, body.is_enabled)
            .await
            .map_err(db)?
    {
        return Err(ApiError::NotFound(format!("Skill '{skill}' not found")));
    }
    let verb = if body.is_enabled {
        "enabled"
    } else {
        "disabled"
    };
    Ok(HttpResponse::Ok().json(SkillToggled {
        agent_id,
        message: format!("Skill '{skill}' {verb} for agent {agent_id}"),
        skill_name: skill,
        is_enabled: body.is_enabled,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// At most 100 skill names; unknown names are skipped.
    skill_names: Vec<String>,
    is_enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    agent_id: i64,
    updated_count: u64,
    is_enabled: bool,
    message: String,
}

/// Enables or disables several skills for the agent at once.
#[utoipa::path(
    post,
    path = "/tools/agents/{agent_id}/skills/bulk",
    params(("agent_id" = i64, Path, description = "Agent id")),
    request_body = BulkBody,
    responses(
        (status = 200, description = "How many skills changed", body = BulkResult),
        (status = 404, description = "No such agent", body = Detail),
    ),
)]
pub async fn bulk(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    Violations::new()
        .check(
            body.skill_names.len() <= MAX_BULK,
            "skill_names",
            "at most 100 skill names",
        )
        .check(
            !body.skill_names.iter().any(|n| n.contains('\0')),
            "skill_names",
            "must not contain the NUL character (\\u0000)",
        )
        .finish()?;
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    let n = enablement::set_skills(&client, agent_id, &body.skill_names, body.is_enabled)
        .await
        .map_err(db)?;
    let verb = if body.is_enabled {
        "enabled"
    } else {
        "disabled"
    };
    Ok(HttpResponse::Ok().json(BulkResult {
        agent_id,
        updated_count: n,
        is_enabled: body.is_enabled,
        message: format!("{n} skill(s) {verb} for agent {agent_id}"),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AllEnabled {
    agent_id: i64,
    enabled_count: u64,
    category: Option<String>,
    message: String,
}

/// Enables every skill (of a category) for the agent.
#[utoipa::path(
    post,
    path = "/tools/agents/{agent_id}/skills/enable-all",
    params(("agent_id" = i64, Path, description = "Agent id"), CategoryQuery),
    responses(
        (status = 200, description = "How many skills were enabled", body = AllEnabled),
        (status = 404, description = "No such agent", body = Detail),
    ),
)]
pub async fn enable_all(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (agent_id, n, category) = switch_all(&state, id, q, true).await?;
    Ok(HttpResponse::Ok().json(AllEnabled {
        agent_id,
        enabled_count: n,
        category,
        message: format!("{n} skill(s) enabled for agent {agent_id}"),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AllDisabled {
    agent_id: i64,
    category: Option<String>,
    message: String,
}

/// Disables every skill (of a category) for the agent.
#[utoipa::path(
    post,
    path = "/tools/agents/{agent_id}/skills/disable-all",
    params(("agent_id" = i64, Path, description = "Agent id"), CategoryQuery),
    responses(
        (status = 200, description = "How many skills were disabled (in `message`)", body = AllDisabled),
        (status = 404, description = "No such agent", body = Detail),
    ),
)]
pub async fn disable_all(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (agent_id, n, category) = switch_all(&state, id, q, false).await?;
    Ok(HttpResponse::Ok().json(AllDisabled {
        agent_id,
        category,
        message: format!("{n} skill(s) disabled for agent {agent_id}"),
    }))
}

/// Enables or disables every skill (of the query's category) for an existing agent: the agent
/// id, how many rows changed, and the category.
async fn switch_all(
    state: &AppState,
    id: web::Path<i64>,
    q: web::Query<CategoryQuery>,
    enable: bool,
) -> Result<(i64, u64, Option<String>), ApiError> {
    let agent_id = id.into_inner();
    check_category(&q)?;
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    let category = q.into_inner().category;
    let n = if enable {
        enablement::enable_all(&client, agent_id, category.as_deref()).await
    } else {
        enablement::disable_all(&client, agent_id, category.as_deref()).await
    }
    .map_err(db)?;
    Ok((agent_id, n, category))
}
