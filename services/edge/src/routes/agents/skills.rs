//! An agent's skills. What is configured and what the runtime lets the agent use are kept
//! consistent by `gathering_tools::configured_skills` (the owner of per-agent skill
//! configuration); these handlers validate names and shape answers. A skill "loads" when it is
//! enabled, globally enabled, and has tools in the registry; the others are reported, not hidden.

use actix_web::{HttpResponse, web};
use gathering_tools::{ToolError, configured_skills, enablement};
use serde_json::{Value, json};

use super::not_found;
use super::view::loaded;
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

/// Most skills one `PUT` configures.
const MAX_SKILLS: usize = 100;

const GET_SQL: &str = "
SELECT a.skill_names,
       ARRAY(SELECT s.name FROM agent.agent_tools t JOIN agent.skills s ON s.id = t.skill_id
             WHERE t.agent_id = a.id AND t.is_enabled AND s.is_enabled ORDER BY s.name) AS enabled,
       COALESCE((SELECT jsonb_object_agg(s.name, jsonb_build_object('description', s.description, 'version', s.version))
                 FROM agent.skills s), '{}'::jsonb) AS catalogue,
       ARRAY(SELECT name FROM agent.skills WHERE is_enabled ORDER BY name) AS available
FROM agent.agents a WHERE a.id = $1";

/// Every skill name with its global switch, for validating names.
const NAMES_SQL: &str = "
SELECT EXISTS (SELECT 1 FROM agent.agents WHERE id = $1) AS agent,
       ARRAY(SELECT name FROM agent.skills ORDER BY name) AS names,
       ARRAY(SELECT name FROM agent.skills WHERE NOT is_enabled ORDER BY name) AS disabled";

/// The skills the agent can use now, as the runtime sees them.
async fn enabled(client: &gathering_db::Client, id: i64) -> Result<Vec<String>, ApiError> {
    enablement::enabled_skills(client, id)
        .await
        .map_err(tool_error)
}

fn tool_error(e: ToolError) -> ApiError {
    ApiError::Internal(e.to_string())
}

#[utoipa::path(
    get,
    path = "/agents/{agent_id}/skills",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{agent_id, configured_skills[] (agents.skill_names), loaded_skills[], skill_details[{name, description, version, tools_count, tools[]}], available_skills[], tools_count}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    let row = client
        .query_opt(GET_SQL, &[&id])
        .await?
        .ok_or_else(|| not_found(id))?;
    let configured: Vec<String> = row.try_get("skill_names")?;
    let enabled: Vec<String> = row.try_get("enabled")?;
    let catalogue: Value = row.try_get("catalogue")?;
    let available: Vec<String> = row.try_get("available")?;
    let loaded = loaded(&state, &enabled);
    let registry = state.tools.registry();
    let details: Vec<Value> = loaded
        .skills
        .iter()
        .map(|name| {
            let tools: Vec<String> = registry
                .list_by_skill(name)
                .iter()
                .map(|d| d.name.clone())
                .collect();
            json!({
                "name": name,
                "description": catalogue[name]["description"],
                "version": catalogue[name]["version"],
                "tools_count": tools.len(),
                "tools": tools,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "agent_id": id,
        "configured_skills": configured,
        "loaded_skills": loaded.skills,
        "skill_details": details,
        "available_skills": available,
        "tools_count": loaded.tools_count,
    })))
}

/// Python's `repr` of a list of names, as upstream messages show them.
fn repr(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Skill names known to the catalogue and which of them are switched off globally; 404 for an
/// unknown agent.
async fn catalogue(
    client: &gathering_db::Client,
    id: i64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let row = client.query_one(NAMES_SQL, &[&id]).await?;
    if !row.try_get::<_, bool>("agent")? {
        return Err(not_found(id));
    }
    Ok((row.try_get("names")?, row.try_get("disabled")?))
}

/// `PUT /agents/{id}/skills` with a bare JSON array of names.
#[utoipa::path(
    put,
    path = "/agents/{agent_id}/skills",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "`{agent_id, configured_skills, loaded_skills, failed_skills[{skill, error}], tools_count}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn put(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if body.len() > MAX_SKILLS {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: "at most 100 skills".into(),
            kind: "value_error".into(),
        }]));
    }
    let mut skills: Vec<String> = Vec::with_capacity(body.len());
    for s in body.into_inner() {
        if !skills.contains(&s) {
            skills.push(s);
        }
    }
    let client = state.pool.get().await?;
    let (names, disabled) = catalogue(&client, id).await?;
    let invalid: Vec<String> = skills
        .iter()
        .filter(|s| !names.contains(s))
        .map(|s| s.chars().take(60).collect())
        .collect();
    if !invalid.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid skill names: {}. Available: {}",
            repr(&invalid),
            repr(&names)
        )));
    }
    configured_skills::configure(&client, id, &skills)
        .await
        .map_err(tool_error)?;
    let loaded = loaded(&state, &enabled(&client, id).await?);
    let per_skill = state.tools.registry().tools_per_skill();
    let failed: Vec<Value> = skills
        .iter()
        .filter(|s| !loaded.skills.contains(s))
        .map(|s| {
            let error = if disabled.contains(s) {
                format!("Skill '{s}' is disabled")
            } else if per_skill.get(s.as_str()).is_none_or(|n| *n == 0) {
                format!("No tools are available for skill '{s}'")
            } else {
                format!("Skill '{s}' could not be loaded")
            };
            json!({"skill": s, "error": error})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "agent_id": id,
        "configured_skills": skills,
        "loaded_skills": loaded.skills,
        "failed_skills": failed,
        "tools_count": loaded.tools_count,
    })))
}

#[utoipa::path(
    post,
    path = "/agents/{agent_id}/skills/{skill_name}",
    params(("agent_id" = i64, Path, description = "Agent id"), ("skill_name" = String, Path, description = "Skill name")),
    responses(
        (status = 200, description = "`{status: added|already_exists, agent_id, skill, skills[], tools_count?}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn add(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, skill) = path.into_inner();
    let client = state.pool.get().await?;
    let (names, _) = catalogue(&client, id).await?;
    if !names.contains(&skill) {
        let shown: String = skill.chars().take(60).collect();
        return Err(ApiError::BadRequest(format!(
            "Invalid skill name: {shown}. Available: {}",
            repr(&names)
        )));
    }
    let configured_skills::Change { had, skills } = configured_skills::add(&client, id, &skill)
        .await
        .map_err(tool_error)?
        .ok_or_else(|| not_found(id))?;
    let tools_count = loaded(&state, &enabled(&client, id).await?).tools_count;
    Ok(HttpResponse::Ok().json(json!({
        "status": if had { "already_exists" } else { "added" },
        "agent_id": id,
        "skill": skill,
        "skills": skills,
        "tools_count": tools_count,
    })))
}

#[utoipa::path(
    delete,
    path = "/agents/{agent_id}/skills/{skill_name}",
    params(("agent_id" = i64, Path, description = "Agent id"), ("skill_name" = String, Path, description = "Skill name")),
    responses(
        (status = 200, description = "`{status: removed|not_found, agent_id, skill, skills[], tools_count?}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, skill) = path.into_inner();
    let client = state.pool.get().await?;
    let configured_skills::Change { had, skills } = configured_skills::remove(&client, id, &skill)
        .await
        .map_err(tool_error)?
        .ok_or_else(|| not_found(id))?;
    let tools_count = loaded(&state, &enabled(&client, id).await?).tools_count;
    Ok(HttpResponse::Ok().json(json!({
        "status": if had { "removed" } else { "not_found" },
        "agent_id": id,
        "skill": skill,
        "skills": skills,
        "tools_count": tools_count,
    })))
}
