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
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

const STATUSES: [&str; 5] = ["unloaded", "loaded", "enabled", "disabled", "error"];

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

fn action(message: String, plugin_id: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "message": message, "plugin_id": plugin_id}))
}

#[derive(Deserialize)]
struct ListQuery {
    status_filter: Option<String>,
    #[serde(default = "yes")]
    include_available: bool,
}

fn yes() -> bool {
    true
}

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
    Ok(HttpResponse::Ok().json(json!({"total": plugins.len(), "plugins": plugins})))
}

async fn available(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let rows = host(&state)?.list().await.map_err(api)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    Ok(HttpResponse::Ok().json(ids))
}

async fn stats(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let rows = host(&state)?.list().await.map_err(api)?;
    let mut by_status: BTreeMap<&str, usize> = STATUSES.iter().map(|s| (*s, 0)).collect();
    for r in &rows {
        *by_status.entry(r.status.as_str()).or_insert(0) += 1;
    }
    let active = |r: &&gathering_tools::plugins::store::PluginRow| r.status == "enabled";
    Ok(HttpResponse::Ok().json(json!({
        "available_plugins": rows.len(),
        "loaded_plugins": rows.iter().filter(|r| matches!(r.status.as_str(), "loaded" | "enabled" | "disabled")).count(),
        "enabled_plugins": rows.iter().filter(active).count(),
        "plugins_by_status": by_status,
        "total_tools_from_plugins": rows.iter().filter(active).map(|r| r.tools_count()).sum::<usize>(),
        "total_competencies_from_plugins": rows.iter().filter(active).map(|r| r.competencies.len()).sum::<usize>(),
    })))
}

async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = host(&state)?.get(&id).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(row.info()))
}

async fn health(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let host = host(&state)?;
    let row = host.get(&id).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(host.health(&row)))
}

async fn health_all(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let host = host(&state)?;
    let rows = host.list().await.map_err(api)?;
    let all: serde_json::Map<String, Value> = rows
        .iter()
        .map(|r| (r.id.clone(), host.health(r)))
        .collect();
    Ok(HttpResponse::Ok().json(all))
}

async fn tools(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = host(&state)?.get(&id).await.map_err(api)?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    plugin_id: String,
    config: Option<Value>,
}

async fn load(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<LoadBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let (row, message) = host(&state)?
        .load(&body.plugin_id, body.config.clone())
        .await
        .map_err(api)?;
    Ok(action(message, &row.id))
}

async fn unload(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.unload(&id).await.map_err(api)?;
    Ok(action(format!("Plugin '{}' unloaded", row.id), &row.id))
}

async fn enable(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.enable(&id).await.map_err(api)?;
    Ok(action(
        format!(
            "Plugin '{}' enabled with {} tool(s)",
            row.id,
            row.tools_count()
        ),
        &row.id,
    ))
}

async fn disable(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let row = host(&state)?.disable(&id).await.map_err(api)?;
    Ok(action(format!("Plugin '{}' disabled", row.id), &row.id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverBody {
    directory: String,
}

async fn discover(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DiscoverBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let (found, errors) = host(&state)?.discover(&body.directory).await.map_err(api)?;
    let discovered: Vec<Value> = found
        .iter()
        .map(|(id, path)| json!({"plugin_id": id, "path": path}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"discovered": discovered, "total": discovered.len(), "errors": errors})))
}

#[derive(Deserialize)]
struct DynamicBody {
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
    rest: serde_json::Map<String, Value>,
}

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
    let row = host(&state)?
        .dynamic(manifest, b.config)
        .await
        .map_err(api)?;
    Ok(HttpResponse::Ok().json(row.info()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    output_path: String,
}

async fn save(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: web::Json<SaveBody>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let path = host(&state)?
        .save(&id, &body.output_path)
        .await
        .map_err(api)?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true, "message": format!("Plugin '{id}' saved to {}", path.display()),
        "plugin_id": id.as_str(), "path": path,
    })))
}
