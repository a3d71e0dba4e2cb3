//! `/plugins` (contract §2.18): plugins are MCP servers (stdio or streamable HTTP) or
//! declarative tools, never code run inside GatheRing. State lives in `agent.plugins`
//! (gathering_tools::plugins), so every edge and executor serves the same plugins; health is
//! the shared state plus this edge's own MCP session.
//!
//! Reads are open to every signed-in user. Every write (load, unload, enable, disable,
//! discover, dynamic, save) is an administrator's: a plugin adds tools that run on the server,
//! and catalogue changes are admin-only (docs/security.md).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use gathering_tools::plugins::manifest::{Problem, tool_name};
use gathering_tools::plugins::{PluginError, PluginHost};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, has_nul};
use crate::openapi::Detail;
use crate::state::AppState;

const STATUSES: [&str; 5] = ["unloaded", "loaded", "enabled", "disabled", "error"];

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list, available, stats, health_all, load, discover, dynamic, get, health, tools, unload,
    enable, disable, save
))]
pub(crate) struct Api;

/// The 200 description of the operations answering one such object (it names the fields).
const PLUGIN: &str = "The plugin: `id`, `name`, `version`, `description`, `author`, `license`, `homepage`, `tags`, `status`, `error`, `tools_count`, `competencies_count`, `kind`, `source_dir`";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plugins", web::get().to(list))
        .route("/plugins/available", web::get().to(available))
        .route("/plugins/stats", web::get().to(stats))
        .route("/plugins/health/all", web::get().to(health_all))
        .route("/plugins/load", web::post().to(load))
        .route("/plugins/discover", web::post().to(discover))
        .route("/plugins/dynamic", web::post().to(dynamic))
        .route("/plugins/{plugin_id}", web::get().to(get))
        .route("/plugins/{plugin_id}/health", web::get().to(health))
        .route("/plugins/{plugin_id}/tools", web::get().to(tools))
        .route("/plugins/{plugin_id}/unload", web::post().to(unload))
        .route("/plugins/{plugin_id}/enable", web::post().to(enable))
        .route("/plugins/{plugin_id}/disable", web::post().to(disable))
        .route("/plugins/{plugin_id}/save", web::post().to(save));
}

fn host(state: &AppState) -> Result<&PluginHost, ApiError> {
    state
        .tools
        .plugins()
        .ok_or_else(|| ApiError::Unavailable("plugins are not available".into()))
}

/// A plugin id from the path or body: one with a NUL character names no plugin (and the
/// database, which cannot store one, is not asked).
fn known(id: &str) -> Result<&str, ApiError> {
    if id.contains('\0') {
        Err(ApiError::NotFound(format!(
            "Plugin '{}' not found",
            id.replace('\0', "")
        )))
    } else {
        Ok(id)
    }
}

/// 422 when a configuration or manifest holds a NUL character (the database cannot store it).
fn no_nul(field: &str, v: Option<&Value>) -> Result<(), ApiError> {
    if v.is_some_and(has_nul) {
        Err(ApiError::Validation(vec![FieldError::body(
            field,
            "must not contain the NUL character (\\u0000)",
        )]))
    } else {
        Ok(())
    }
}

fn problems(list: Vec<Problem>) -> ApiError {
    ApiError::Validation(
        list.into_iter()
            .map(|p| {
                let mut loc = vec!["body".to_owned()];
                for part in p.field.split('.') {
                    match part.split_once('[') {
                        Some((name, idx)) => {
                            loc.push(name.to_owned());
                            loc.push(idx.trim_end_matches(']').to_owned());
                        }
                        None if part == "id" => loc.push("plugin_id".into()),
                        None => loc.push(part.to_owned()),
                    }
                }
                FieldError {
                    loc,
                    msg: p.message,
                    kind: "value_error".into(),
                }
            })
            .collect(),
    )
}

fn api(e: PluginError) -> ApiError {
    match e {
        PluginError::NotFound(m) => ApiError::NotFound(m),
        PluginError::BadRequest(m) => ApiError::BadRequest(m),
        PluginError::Invalid(p) => problems(p),
        PluginError::Internal(m) => ApiError::Internal(m),
    }
}

#[derive(Serialize, ToSchema)]
struct Action<'a> {
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `unloaded`, `loaded`, `enabled`, `disabled` or `error`.
    status_filter: Option<String>,
    /// Include plugins that are known but not loaded (default true).
    #[serde(default = "yes")]
    include_available: bool,
}

#[derive(Serialize, ToSchema)]
struct PluginList {
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
async fn list(
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
async fn available(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let rows = host(&state)?.list().await.map_err(api)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    Ok(HttpResponse::Ok().json(ids))
}

#[derive(Serialize, ToSchema)]
struct PluginStats<'a> {
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
async fn stats(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
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
async fn get(
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
async fn health(
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
async fn health_all(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
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
async fn tools(
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoadBody {
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
async fn load(
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
async fn unload(
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
async fn enable(
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
async fn disable(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.disable(known(&id)?).await.map_err(api)?;
    Ok(action(format!("Plugin '{}' disabled", row.id), &row.id))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DiscoverBody {
    /// A folder inside the plugin roots.
    directory: String,
}

#[derive(Serialize, ToSchema)]
struct Discovered {
    plugin_id: String,
    path: String,
}

#[derive(Serialize, ToSchema)]
struct Discovery {
    discovered: Vec<Discovered>,
    total: usize,
    /// Manifests that could not be read, with why.
    errors: Vec<String>,
}

/// Looks for plugin manifests in a folder and records them (administrators).
#[utoipa::path(
    post,
    path = "/plugins/discover",
    request_body = DiscoverBody,
    responses(
        (status = 200, description = "What was found", body = Discovery),
        (status = 400, description = "The folder cannot be used", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
async fn discover(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DiscoverBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let (found, errors) = host(&state)?.discover(&body.directory).await.map_err(api)?;
    let discovered: Vec<Discovered> = found
        .into_iter()
        .map(|(plugin_id, path)| Discovered { plugin_id, path })
        .collect();
    Ok(HttpResponse::Ok().json(Discovery {
        total: discovered.len(),
        discovered,
        errors,
    }))
}

/// A declarative plugin's manifest; `license`, `homepage`, `tags` and `limits` may be given too.
#[derive(Deserialize, ToSchema)]
struct DynamicBody {
    /// The plugin's id (checked with the manifest: letters, digits, `_` and `-`).
    plugin_id: Value,
    name: Value,
    #[serde(default)]
    description: Value,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    author: Value,
    #[serde(default)]
    tools: Value,
    #[serde(default)]
    competencies: Value,
    config: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    rest: serde_json::Map<String, Value>,
}

/// Creates a declarative plugin from a manifest (administrators).
#[utoipa::path(
    post,
    path = "/plugins/dynamic",
    request_body = DynamicBody,
    responses(
        (status = 200, description = PLUGIN, body = Object),
        (status = 400, description = "The plugin cannot be created", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
async fn dynamic(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DynamicBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let b = body.into_inner();
    let mut manifest = json!({"id": b.plugin_id, "name": b.name, "tools": b.tools});
    for (k, v) in [
        ("description", b.description),
        ("version", b.version),
        ("author", b.author),
        ("competencies", b.competencies),
    ] {
        if !v.is_null() {
            manifest[k] = v;
        }
    }
    // The optional manifest fields (license, homepage, tags, limits) pass through.
    for (k, v) in b.rest {
        if matches!(k.as_str(), "license" | "homepage" | "tags" | "limits") {
            manifest[k] = v;
        } else {
            return Err(ApiError::Validation(vec![FieldError::body(
                &k,
                "unknown field",
            )]));
        }
    }
    no_nul("config", b.config.as_ref())?;
    no_nul("manifest", Some(&manifest))?;
    let row = host(&state)?
        .dynamic(manifest, b.config)
        .await
        .map_err(api)?;
    Ok(HttpResponse::Ok().json(row.info()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    /// Where to write the manifest (inside the plugin roots).
    output_path: String,
}

#[derive(Serialize, ToSchema)]
struct Saved<'a> {
    success: bool,
    message: String,
    plugin_id: &'a str,
    #[schema(value_type = String)]
    path: std::path::PathBuf,
}

/// Saves a plugin's manifest to a file (administrators).
#[utoipa::path(
    post,
    path = "/plugins/{plugin_id}/save",
    params(("plugin_id" = String, Path, description = "Plugin id")),
    request_body = SaveBody,
    responses(
        (status = 200, description = "Saved", body = Saved),
        (status = 400, description = "The path cannot be used", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such plugin", body = Detail),
        (status = 503, description = "Plugins are not available", body = Detail),
    ),
)]
async fn save(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: web::Json<SaveBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let path = host(&state)?
        .save(known(&id)?, &body.output_path)
        .await
        .map_err(api)?;
    Ok(HttpResponse::Ok().json(Saved {
        success: true,
        message: format!("Plugin '{id}' saved to {}", path.display()),
        plugin_id: id.as_str(),
        path,
    }))
}
