//! Activities (persisted) and `run-python`.

use actix_web::{HttpResponse, web};
use gathering_tools::Permission;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::files::{open, record};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;
use crate::workspace::activities::{self, MAX_DETAILS_BYTES, NewActivity, TYPES};
use crate::workspace::{exec_allowed, project_root, python};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 500 (default 50).
    limit: Option<i64>,
    /// Only this agent's activities.
    agent_id: Option<i64>,
    /// Only activities of this type.
    activity_type: Option<String>,
}

/// The project's activities, newest first: `id`, `project_id`, `agent_id`, `type`, `details`,
/// `timestamp`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/activities",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        ListQuery,
    ),
    responses(
        (status = 200, description = "The activities", body = Vec<Object>),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "limit must be 1 to 500",
        )]));
    }
    open(&state, &user, *id, &[Permission::Read]).await?;
    let client = state.pool.get().await?;
    let list =
        activities::list(&client, *id, limit, q.agent_id, q.activity_type.as_deref()).await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    agent_id: Option<i64>,
    /// One of the activity types (`file_created`, `file_edited`, `file_deleted`, `commit`,
    /// `command_executed`, …; 400 names them all).
    activity_type: String,
    /// An object of at most 16 KiB.
    #[serde(default)]
    details: Option<Value>,
}

/// Records an activity on the project.
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/activities",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = CreateBody,
    responses(
        (status = 200, description = "The activity: `id`, `project_id`, `agent_id`, `type`, `details`, `timestamp`", body = Object),
        (status = 400, description = "Unknown activity type", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let details = b.details.unwrap_or_else(|| json!({}));
    Violations::new()
        .check(details.is_object(), "details", "details must be an object")
        .check(
            serde_json::to_vec(&details).is_ok_and(|v| v.len() <= MAX_DETAILS_BYTES),
            "details",
            "details is larger than 16 KiB",
        )
        .finish()?;
    if !TYPES.contains(&b.activity_type.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid activity type: {}. Valid types: {}",
            b.activity_type.chars().take(100).collect::<String>(),
            TYPES.join(", ")
        )));
    }
    project_root_exists(&state, &user, *id).await?;
    let a = NewActivity {
        project_id: *id,
        agent_id: b.agent_id,
        activity_type: &b.activity_type,
        details,
        created_by: Some(user.0.sub.as_str()),
    };
    Ok(HttpResponse::Ok().json(activities::record(&state.pool, a).await?))
}

/// 404 for an unknown project; activities need no folder on disk.
async fn project_root_exists(state: &AppState, user: &AuthUser, id: i64) -> Result<(), ApiError> {
    crate::workspace::require(state, user, &[Permission::Write])?;
    let client = state.pool.get().await?;
    match gathering_tools::project::store::get(&client, id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::NotFound(format!("Project {id} not found"))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// Activity counts: `total`, `by_type`, `agents`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/activities/stats",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    responses(
        (status = 200, description = "The counts", body = Object),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn stats(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    crate::workspace::require(&state, &user, &[Permission::Read])?;
    let client = state.pool.get().await?;
    if gathering_tools::project::store::get(&client, *id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("Project {} not found", *id)));
    }
    Ok(HttpResponse::Ok().json(activities::stats(&client, *id).await?))
}

/// `code` to run, or else the project's `file_path`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    code: String,
    /// A Python file of the project.
    file_path: Option<String>,
}

/// Runs Python code in the project's folder (when `GATHERING_WORKSPACE_EXEC` allows it):
/// `stdout`, `stderr`, `exit_code`, `execution_time`, `stdout_truncated`, `stderr_truncated`,
/// `signal`.
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/run-python",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = RunBody,
    responses(
        (status = 200, description = "The run's outcome", body = Object),
        (status = 400, description = "No code nor file, or the file is outside the project", body = Detail),
        (status = 403, description = "Code execution is not allowed", body = Detail),
        (status = 404, description = "No such project", body = Detail),
        (status = 408, description = "The run took longer than its limit", body = Detail),
    ),
)]
pub async fn run_python(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RunBody>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let limits = &state.config.tools.code;
    Violations::new()
        .check(
            body.code.len() <= limits.max_code_bytes,
            "code",
            "code is too large",
        )
        .check(
            body.file_path.as_ref().is_none_or(|p| p.len() <= 4096),
            "file_path",
            "file_path is too long",
        )
        .finish()?;
    exec_allowed(&state, user.0.is_admin()).map_err(ApiError::Forbidden)?;
    let root = project_root(&state, id).await?;
    let input = python::RunPython {
        code: &body.code,
        file_path: body.file_path.as_deref(),
    };
    let result = python::run(&root, input, state.workspace.config.python_timeout, limits).await;
    // The code may have written files.
    state.workspace.cache.invalidate(root.path());
    let out = result?;
    record(
        &state,
        &user,
        id,
        "command_executed",
        json!({"command": "run-python", "file_path": body.file_path, "exit_code": out["exit_code"]}),
    )
    .await;
    Ok(HttpResponse::Ok().json(out))
}
