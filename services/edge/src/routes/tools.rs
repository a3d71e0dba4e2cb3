//! `/tools` (contract §2.15): the skill catalogue (`agent.skills`) and per-agent enablement
//! (`agent.agent_tools`), plus the registry itself: `GET /tools` lists every tool with its
//! input schema and `POST /tools/execute` runs one with validated input and answers the
//! contract's `SkillResponse`.
//!
//! `POST /tools/execute` maps request problems to HTTP errors (404 unknown tool, agent or
//! project; 422 input that fails the tool's schema, every violation under
//! `["body", "input", …path]`; 403 missing permission or skill not enabled for the agent) and
//! answers 200 with a `SkillResponse` for everything the tool itself decides (success, failure,
//! refusal, timeout, `needs_confirmation`). The caller's permissions are the configured grants
//! (`GATHERING_TOOL_GRANTS`; every permission for an admin), optionally narrowed by the request.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use gathering_tools::{
    CallContext, Category, Grants, Permission, SkillResponse, ToolError, enablement,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// Most skills one bulk request changes.
const MAX_BULK: usize = 100;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_tools,
    stats,
    execute,
    list_skills,
    categories,
    agent_tools,
    enabled,
    bulk,
    enable_all,
    disable_all,
    set_skill
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tools", web::get().to(list_tools))
        .route("/tools/stats", web::get().to(stats))
        .route("/tools/execute", web::post().to(execute))
        .route("/tools/skills", web::get().to(list_skills))
        .route("/tools/skills/categories", web::get().to(categories))
        .route("/tools/agents/{agent_id}", web::get().to(agent_tools))
        .route("/tools/agents/{agent_id}/enabled", web::get().to(enabled))
        .route("/tools/agents/{agent_id}/skills/bulk", web::post().to(bulk))
        .route(
            "/tools/agents/{agent_id}/skills/enable-all",
            web::post().to(enable_all),
        )
        .route(
            "/tools/agents/{agent_id}/skills/disable-all",
            web::post().to(disable_all),
        )
        .route(
            "/tools/agents/{agent_id}/skills/{skill_name}",
            web::patch().to(set_skill),
        );
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

fn db(e: ToolError) -> ApiError {
    ApiError::Internal(e.to_string())
}

async fn agent_name(client: &gathering_db::Client, agent_id: i64) -> Result<String, ApiError> {
    enablement::agent_name(client, agent_id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::NotFound(format!("Agent {agent_id} not found")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ToolsQuery {
    /// Only the tools of this category (422 for an unknown one).
    category: Option<String>,
    /// Only the tools of this skill.
    skill: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ToolList {
    total: usize,
    /// Each tool: `name`, `description`, `skill`, `category`, `input_schema`, permissions…
    tools: Vec<Value>,
}

/// Every registered tool with its input schema.
#[utoipa::path(
    get,
    path = "/tools",
    params(ToolsQuery),
    responses((status = 200, description = "The tools", body = ToolList)),
)]
async fn list_tools(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ToolsQuery>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.tools.registry();
    let defs = match &q.category {
        Some(c) => {
            let cat = Category::parse(c).ok_or_else(|| {
                ApiError::Validation(vec![FieldError::query(
                    "category",
                    format!("unknown category '{c}'"),
                )])
            })?;
            reg.list_by_category(cat)
        }
        None => reg.list_all(),
    };
    let tools: Vec<Value> = defs
        .iter()
        .filter(|d| q.skill.as_ref().is_none_or(|s| *s == d.skill))
        .map(|d| d.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ToolList {
        total: tools.len(),
        tools,
    }))
}

/// Registry statistics (tool counts by category and skill).
#[utoipa::path(
    get,
    path = "/tools/stats",
    responses((status = 200, description = "Registry statistics", body = Object)),
)]
async fn stats(state: web::Data<AppState>, _user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(state.tools.registry().get_stats())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    /// The tool's name (1 to 100 characters).
    tool: String,
    /// The tool's input, checked against its input schema.
    #[serde(default = "empty_object")]
    input: Value,
    /// Run as this agent (its enabled skills apply).
    agent_id: Option<i64>,
    /// Run inside this project's folder.
    project_id: Option<i64>,
    /// The caller confirms a dangerous tool's call.
    #[serde(default)]
    confirmed: bool,
    /// Narrows the caller's permissions to these (`read`, `write`, `delete`, `git`, `network`, …).
    permissions: Option<Vec<String>>,
    /// 1 to 600.
    timeout_seconds: Option<u64>,
}

fn empty_object() -> Value {
    json!({})
}

/// Runs one tool with validated input; the tool's own outcome is a 200 `SkillResponse`
/// (`success`, `message`, `data`, `error`, `skill_name`, `tool_name`, `duration_ms`, …).
#[utoipa::path(
    post,
    path = "/tools/execute",
    request_body = ExecuteBody,
    responses(
        (status = 200, description = "The tool ran (or refused, failed, timed out, needs confirmation): a SkillResponse", body = Object),
        (status = 400, description = "The project cannot be used", body = Detail),
        (status = 403, description = "Missing permission, or the skill is not enabled for the agent", body = Detail),
        (status = 404, description = "Unknown tool, agent or project", body = Detail),
    ),
)]
async fn execute(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ExecuteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut v = Violations::new();
    v.check(
        !body.tool.is_empty() && body.tool.len() <= 100,
        "tool",
        "tool must be 1 to 100 characters",
    );
    v.check(
        body.timeout_seconds.is_none_or(|t| (1..=600).contains(&t)),
        "timeout_seconds",
        "timeout_seconds must be 1 to 600",
    );
    let mut grants = if user.0.is_admin() {
        Grants::all()
    } else {
        state.config.tools.grants
    };
    if let Some(asked) = &body.permissions {
        let mut narrowed = Grants::NONE;
        for p in asked {
            match Permission::parse(p) {
                Some(p) => narrowed = narrowed.with(p),
                None => {
                    v.push(FieldError::body(
                        "permissions",
                        format!("unknown permission '{p}'"),
                    ));
                }
            }
        }
        grants = grants.intersect(narrowed);
    }
    v.finish()?;
    let registry = state.tools.registry();
    let def = registry
        .get(&body.tool)
        .ok_or_else(|| ApiError::NotFound(format!("Tool '{}' not found in registry", body.tool)))?;

    let client = state.pool.get().await?;
    if let Some(agent) = body.agent_id {
        agent_name(&client, agent).await?;
    }
    let project = match body.project_id {
        Some(id) => Some(
            gathering_tools::project::resolve_root(&client, id, &state.config.tools.project_roots)
                .await
                .map_err(|e| match e {
                    gathering_tools::project::ProjectError::NotFound(_) => {
                        ApiError::NotFound(e.to_string())
                    }
                    gathering_tools::project::ProjectError::Db(m) => ApiError::Internal(m),
                    other => ApiError::BadRequest(other.to_string()),
                })?,
        ),
        None => None,
    };
    drop(client);

    let ctx = CallContext::new(grants)
        .confirmed(body.confirmed)
        .agent(body.agent_id)
        .project(project)
        .with_timeout(body.timeout_seconds.map(Duration::from_secs));
    let at = chrono::Utc::now();
    let started = Instant::now();
    // Dropping this future (client gone) drops the tool's: the call is cancelled.
    let result = registry.call(&body.tool, body.input, &ctx).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Err(ToolError::Validation { violations, .. }) => Err(ApiError::Validation(
            violations
                .into_iter()
                .map(|viol| {
                    let mut loc = vec!["body".to_owned(), "input".to_owned()];
                    loc.extend(viol.segments.iter().map(|s| match s {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }));
                    FieldError {
                        loc,
                        msg: viol.message,
                        kind: viol.keyword,
                    }
                })
                .collect(),
        )),
        Err(e @ (ToolError::PermissionDenied { .. } | ToolError::NotEnabled { .. })) => {
            Err(ApiError::Forbidden(e.to_string()))
        }
        Err(ToolError::NotFound(name)) => Err(ApiError::NotFound(format!(
            "Tool '{name}' not found in registry"
        ))),
        Err(ToolError::Db(m)) => Err(ApiError::Internal(m)),
        other => Ok(HttpResponse::Ok().json(SkillResponse::from_result(
            &def.skill, &def.name, other, ms, at,
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CategoryQuery {
    /// Only the skills of this category.
    category: Option<String>,
}

/// The skill catalogue, each skill with its `tools_count`.
#[utoipa::path(
    get,
    path = "/tools/skills",
    params(CategoryQuery),
    responses((status = 200, description = "The skills", body = Vec<Object>)),
)]
async fn list_skills(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    check_category(&q)?;
    let client = state.pool.get().await?;
    let counts = state.tools.registry().tools_per_skill();
    let mut skills = enablement::list_skills(&client, q.category.as_deref())
        .await
        .map_err(db)?;
    for s in &mut skills {
        let n = s["name"]
            .as_str()
            .and_then(|n| counts.get(n))
            .copied()
            .unwrap_or(0);
        s["tools_count"] = json!(n);
    }
    Ok(HttpResponse::Ok().json(skills))
}

/// Skill categories with how many enabled skills each has.
#[utoipa::path(
    get,
    path = "/tools/skills/categories",
    responses((status = 200, description = "The categories", body = Value)),
)]
async fn categories(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(enablement::skill_categories(&client).await.map_err(db)?))
}

#[derive(Serialize, ToSchema)]
struct AgentTools {
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
async fn agent_tools(
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
struct EnabledSkills {
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
async fn enabled(
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
struct ToggleBody {
    is_enabled: bool,
}

#[derive(Serialize, ToSchema)]
struct SkillToggled {
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
async fn set_skill(
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
struct BulkBody {
    /// At most 100 skill names; unknown names are skipped.
    skill_names: Vec<String>,
    is_enabled: bool,
}

#[derive(Serialize, ToSchema)]
struct BulkResult {
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
async fn bulk(
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
struct AllEnabled {
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
async fn enable_all(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    check_category(&q)?;
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    let n = enablement::enable_all(&client, agent_id, q.category.as_deref())
        .await
        .map_err(db)?;
    Ok(HttpResponse::Ok().json(AllEnabled {
        agent_id,
        enabled_count: n,
        category: q.into_inner().category,
        message: format!("{n} skill(s) enabled for agent {agent_id}"),
    }))
}

#[derive(Serialize, ToSchema)]
struct AllDisabled {
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
async fn disable_all(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    check_category(&q)?;
    let client = state.pool.get().await?;
    agent_name(&client, agent_id).await?;
    let n = enablement::disable_all(&client, agent_id, q.category.as_deref())
        .await
        .map_err(db)?;
    Ok(HttpResponse::Ok().json(AllDisabled {
        agent_id,
        category: q.into_inner().category,
        message: format!("{n} skill(s) disabled for agent {agent_id}"),
    }))
}
