//! `POST /tools/execute`: runs one registry tool with validated input and answers the contract's
//! `SkillResponse`.
//!
//! It maps request problems to HTTP errors (404 unknown tool, agent or
//! project; 422 input that fails the tool's schema, every violation under
//! `["body", "input", …path]`; 403 missing permission or skill not enabled for the agent) and
//! answers 200 with a `SkillResponse` for everything the tool itself decides (success, failure,
//! refusal, timeout, `needs_confirmation`). The caller's permissions are the configured grants
//! (`GATHERING_TOOL_GRANTS`; every permission for an admin), optionally narrowed by the request.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gathering_tools::project::ProjectError;
use gathering_tools::{
    CallContext, Grants, Permission, ProjectRoot, SkillResponse, ToolDefinition, ToolError,
    ToolOutput,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::agent_name;
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
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
pub async fn execute(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ExecuteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let grants = checked_grants(&state, &user, &body)?;
    let registry = state.tools.registry();
    let def = registry
        .get(&body.tool)
        .ok_or_else(|| ApiError::NotFound(format!("Tool '{}' not found in registry", body.tool)))?;
    let project = project_root(&state, &body).await?;
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
    answer(result, &def, ms, at)
}

/// Checks the body and returns the caller's permissions: the configured grants (every one for
/// an admin), narrowed to those the request names.
fn checked_grants(
    state: &AppState,
    user: &AuthUser,
    body: &ExecuteBody,
) -> Result<Grants, ApiError> {
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
    Ok(grants)
}

/// 404 unless the agent exists; the project's folder when the call names one. The database
/// connection goes back to the pool before the tool runs, which may take minutes.
async fn project_root(
    state: &AppState,
    body: &ExecuteBody,
) -> Result<Option<ProjectRoot>, ApiError> {
    let client = state.pool.get().await?;
    if let Some(agent) = body.agent_id {
        agent_name(&client, agent).await?;
    }
    let Some(id) = body.project_id else {
        return Ok(None);
    };
    gathering_tools::project::resolve_root(&client, id, &state.config.tools.project_roots)
        .await
        .map(Some)
        .map_err(|e| match e {
            ProjectError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ProjectError::Db(m) => ApiError::Internal(m),
            other => ApiError::BadRequest(other.to_string()),
        })
}

/// The call's outcome: problems with the request are HTTP errors (422 input under
/// `["body", "input", …path]`, 403, 404); whatever the tool itself decided is a 200
/// `SkillResponse`.
fn answer(
    result: Result<ToolOutput, ToolError>,
    def: &ToolDefinition,
    ms: u64,
    at: DateTime<Utc>,
) -> Result<HttpResponse, ApiError> {
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
