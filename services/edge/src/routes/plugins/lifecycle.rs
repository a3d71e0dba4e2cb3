//! A plugin's lifecycle (administrators): loading a known plugin with its configuration,
//! enabling or disabling its tools, unloading it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{api, host, known, no_nul};
use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Action<'a> {
    success: bool,
    message: String,
    plugin_id: &'a str,
}

fn action(message: String, plugin_id: &str) -> HttpResponse {
    HttpResponse::Ok().json(Action {
        success: true,
        message,
        plugin_id,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBody {
    plugin_id: String,
    /// The plugin's configuration (checked against its manifest).
    config: Option<Value>,
}

/// Loads a known plugin (administrators).
#[utoipa::path(
    post,
    path = "/plugins/load",
    request_body = LoadBody,
    responses(
        (status = 200, description = "Loaded", body = Action),
        (status = 400, description = "The plugin cannot be loaded", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn load(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<LoadBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    no_nul("config", body.config.as_ref())?;
    let (row, message) = host(&state)?
        .load(known(&body.plugin_id)?, body.config.clone())
        .await
        .map_err(api)?;
    Ok(action(message, &row.id))
}

/// Unloads a plugin (administrators).
#[utoipa::path(
    post,
    path = "/plugins/{plugin_id}/unload",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "Unloaded", body = Action),
        (status = 400, description = "Not possible in the plugin's state", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn unload(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.unload(known(&id)?).await.map_err(api)?;
    Ok(action(format!("Plugin '{}' unloaded", row.id), &row.id))
}

/// Enables a loaded plugin's tools (administrators).
#[utoipa::path(
    post,
    path = "/plugins/{plugin_id}/enable",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "Enabled", body = Action),
        (status = 400, description = "Not possible in the plugin's state", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn enable(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.enable(known(&id)?).await.map_err(api)?;
    Ok(action(
        format!(
            "Plugin '{}' enabled with {} tool(s)",
            row.id,
            row.tools_count()
        ),
        &row.id,
    ))
}

/// Disables a plugin's tools (administrators).
#[utoipa::path(
    post,
    path = "/plugins/{plugin_id}/disable",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "Disabled", body = Action),
        (status = 400, description = "Not possible in the plugin's state", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn disable(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.disable(known(&id)?).await.map_err(api)?;
    Ok(action(format!("Plugin '{}' disabled", row.id), &row.id))
}
