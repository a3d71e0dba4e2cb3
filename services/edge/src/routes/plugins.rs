//! `/plugins` (contract §2.18): plugins are MCP servers (stdio or streamable HTTP) or
//! declarative tools, never code run inside GatheRing. State lives in `agent.plugins`
//! (gathering_tools::plugins), so every edge and executor serves the same plugins; health is
//! the shared state plus this edge's own MCP session.
//!
//! Reads are open to every signed-in user. Every write (load, unload, enable, disable,
//! discover, dynamic, save) is an administrator's: a plugin adds tools that run on the server,
//! and catalogue changes are admin-only (docs/security.md).

mod lifecycle;
mod manifests;
mod read;

use actix_web::web;
use gathering_tools::plugins::manifest::Problem;
use gathering_tools::plugins::{PluginError, PluginHost};
use serde_json::Value;

use crate::error::{ApiError, FieldError, has_nul};
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    read::list,
    read::available,
    read::stats,
    read::health_all,
    lifecycle::load,
    manifests::discover,
    manifests::dynamic,
    read::get,
    read::health,
    read::tools,
    lifecycle::unload,
    lifecycle::enable,
    lifecycle::disable,
    manifests::save,
))]
pub(crate) struct Api;

/// The 200 description of the operations answering one such object (it names the fields).
const PLUGIN: &str = "The plugin: `id`, `name`, `version`, `description`, `author`, `license`, `homepage`, `tags`, `status`, `error`, `tools_count`, `competencies_count`, `kind`, `source_dir`";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plugins", web::get().to(read::list))
        .route("/plugins/available", web::get().to(read::available))
        .route("/plugins/stats", web::get().to(read::stats))
        .route("/plugins/health/all", web::get().to(read::health_all))
        .route("/plugins/load", web::post().to(lifecycle::load))
        .route("/plugins/discover", web::post().to(manifests::discover))
        .route("/plugins/dynamic", web::post().to(manifests::dynamic))
        .route("/plugins/{plugin_id}", web::get().to(read::get))
        .route("/plugins/{plugin_id}/health", web::get().to(read::health))
        .route("/plugins/{plugin_id}/tools", web::get().to(read::tools))
        .route(
            "/plugins/{plugin_id}/unload",
            web::post().to(lifecycle::unload),
        )
        .route(
            "/plugins/{plugin_id}/enable",
            web::post().to(lifecycle::enable),
        )
        .route(
            "/plugins/{plugin_id}/disable",
            web::post().to(lifecycle::disable),
        )
        .route("/plugins/{plugin_id}/save", web::post().to(manifests::save));
}

/// The plugin host, or 503 when this edge runs without plugins.
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

/// A manifest's problems as 422 field errors located in the request body (`tools[0].name` is
/// `body.tools.0.name`; the manifest's `id` is the body's `plugin_id`).
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

/// The plugin host's errors as the API's.
fn api(e: PluginError) -> ApiError {
    match e {
        PluginError::NotFound(m) => ApiError::NotFound(m),
        PluginError::BadRequest(m) => ApiError::BadRequest(m),
        PluginError::Invalid(p) => problems(p),
        PluginError::Internal(m) => ApiError::Internal(m),
    }
}
