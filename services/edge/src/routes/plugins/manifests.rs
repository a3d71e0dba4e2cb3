//! Plugins as manifests (administrators): finding manifests in a folder, creating a
//! declarative plugin from one, and writing a plugin's manifest to a file.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{PLUGIN, api, host, known, no_nul};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverBody {
    /// A folder inside the plugin roots.
    directory: String,
}

#[derive(Serialize, ToSchema)]
pub struct Discovered {
    plugin_id: String,
    path: String,
}

#[derive(Serialize, ToSchema)]
pub struct Discovery {
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
pub async fn discover(
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
pub struct DynamicBody {
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
pub async fn dynamic(
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
pub struct SaveBody {
    /// Where to write the manifest (inside the plugin roots).
    output_path: String,
}

#[derive(Serialize, ToSchema)]
pub struct Saved<'a> {
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
pub async fn save(
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
