//! Reading plugins, open to every signed-in user: the list and the ids, counts by status, one
//! plugin, its health (the shared state plus this edge's MCP session) and the tools it adds.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use gathering_tools::plugins::manifest::tool_name;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{PLUGIN, api, host, known};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

const STATUSES: [&str; 5] = ["unloaded", "loaded", "enabled", "disabled", "error"];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `unloaded`, `loaded`, `enabled`, `disabled` or `error`.
    status_filter: Option<String>,
    /// Include plugins that are known but not loaded (default true).
    #[serde(default = "yes")]
    include_available: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    total: usize,
    /// Each plugin (see `GET /plugins/{plugin_id}`).
    plugins: Vec<Value>,
}

fn yes() -> bool {
    true
}

/// The plugins (of a status).
#[utoipa::path(
    get,
    path = "/plugins",
    params(ListQuery),
    responses(
        (status = 200, description = "The plugins", body = PluginList),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(s) = &q.status_filter
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::query(
            "status_filter",
            format!("status_filter must be one of {}", STATUSES.join(", ")),
        )]));
    }
    let rows = host(&state)?.list().await.map_err(api)?;
    let plugins: Vec<Value> = rows
        .iter()
        .filter(|r| q.include_available || r.status != "unloaded")
        .filter(|r| q.status_filter.as_ref().is_none_or(|s| *s == r.status))
        .map(|r| r.info())
        .collect();
    Ok(HttpResponse::Ok().json(PluginList {
        total: plugins.len(),
        plugins,
    }))
}

/// The ids of every known plugin.
#[utoipa::path(
    get,
    path = "/plugins/available",
    responses(
        (status = 200, description = "Plugin ids", body = Vec<String>),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn available(
    state: web::Data<AppState>,
    _user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rows = host(&state)?.list().await.map_err(api)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    Ok(HttpResponse::Ok().json(ids))
}

#[derive(Serialize, ToSchema)]
pub struct PluginStats<'a> {
    available_plugins: usize,
    loaded_plugins: usize,
    enabled_plugins: usize,
    plugins_by_status: BTreeMap<&'a str, usize>,
    total_tools_from_plugins: usize,
    total_competencies_from_plugins: usize,
}

/// Counts of plugins by status and of the tools they add.
#[utoipa::path(
    get,
    path = "/plugins/stats",
    responses(
        (status = 200, description = "Statistics", body = PluginStats),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn stats(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let rows = host(&state)?.list().await.map_err(api)?;
    let mut by_status: BTreeMap<&str, usize> = STATUSES.iter().map(|s| (*s, 0)).collect();
    for r in &rows {
        *by_status.entry(r.status.as_str()).or_insert(0) += 1;
    }
    let active = |r: &&gathering_tools::plugins::store::PluginRow| r.status == "enabled";
    Ok(HttpResponse::Ok().json(PluginStats {
        available_plugins: rows.len(),
        loaded_plugins: rows
            .iter()
            .filter(|r| matches!(r.status.as_str(), "loaded" | "enabled" | "disabled"))
            .count(),
        enabled_plugins: rows.iter().filter(active).count(),
        plugins_by_status: by_status,
        total_tools_from_plugins: rows.iter().filter(active).map(|r| r.tools_count()).sum(),
        total_competencies_from_plugins: rows
            .iter()
            .filter(active)
            .map(|r| r.competencies.len())
            .sum(),
    }))
}

/// One plugin.
#[utoipa::path(
    get,
    path = "/plugins/{plugin_id}",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = PLUGIN, body = Object),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = host(&state)?.get(known(&id)?).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(row.info()))
}

/// A plugin's health: the shared state and this edge's MCP session.
#[utoipa::path(
    get,
    path = "/plugins/{plugin_id}/health",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin's health", body = Object),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn health(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let host = host(&state)?;
    let row = host.get(known(&id)?).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(host.health(&row)))
}

/// Every plugin's health, by plugin id.
#[utoipa::path(
    get,
    path = "/plugins/health/all",
    responses(
        (status = 200, description = "Health by plugin id", body = Object),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn health_all(
    state: web::Data<AppState>,
    _user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let host = host(&state)?;
    let rows = host.list().await.map_err(api)?;
    let all: serde_json::Map<String, Value> = rows
        .iter()
        .map(|r| (r.id.clone(), host.health(r)))
        .collect();
    Ok(HttpResponse::Ok().json(all))
}

/// The tools a plugin adds: `name`, `description`, `category`, `required_competencies`,
/// `input_schema`, `is_dangerous`, `plugin_id`.
#[utoipa::path(
    get,
    path = "/plugins/{plugin_id}/tools",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    responses(
        (status = 200, description = "The plugin's tools", body = Vec<Object>),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
pub async fn tools(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = host(&state)?.get(known(&id)?).await.map_err(api)?;
    let list: Vec<Value> = row
        .tools
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            json!({
                "name": tool_name(&row.id, t["name"].as_str().unwrap_or_default()),
                "description": t["description"],
                "category": t["category"].as_str().unwrap_or("custom"),
                "required_competencies": t.get("required_competencies").cloned().unwrap_or_else(|| json!([])),
                "input_schema": t["input_schema"],
                "is_dangerous": t["dangerous"] == json!(true),
                "plugin_id": row.id,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}
