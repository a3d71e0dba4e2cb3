//! `/providers`: LLM providers with the number of models each has.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::input::{line_ok, opt_line_ok};
use super::rows;
use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// Wire protocols the gateway speaks (`agent.providers.api_type`).
const API_TYPES: &[&str] = &["anthropic", "openai", "ollama", "gemini"];

const LIST_SQL: &str = "
SELECT p.id, p.name, p.api_base_url, p.api_type, p.is_local, p.created_at,
       (SELECT count(*) FROM agent.models m WHERE m.provider_id = p.id) AS model_count
FROM agent.providers p
WHERE $1::int8 IS NULL OR p.id = $1
ORDER BY p.id";

const CREATE_SQL: &str = "
INSERT INTO agent.providers (name, api_base_url, api_type, is_local)
VALUES ($1, $2, COALESCE($3, 'openai'), $4)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, api_base_url, api_type, is_local, created_at, 0::int8 AS model_count";

#[utoipa::path(
    get,
    path = "/providers",
    responses(
        (status = 200, description = "`{providers[{id, name, api_base_url?, is_local, created_at, model_count}], total}`", body = Object),
    ),
)]
pub async fn list(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let rows = client.query(&stmt, &[&None::<i64>]).await?;
    let providers = rows::all_to_json(&rows)?;
    Ok(HttpResponse::Ok().json(json!({"total": providers.len(), "providers": providers})))
}

#[utoipa::path(
    get,
    path = "/providers/{provider_id}",
    params(("provider_id" = i64, Path, description = "Provider id")),
    responses(
        (status = 200, description = "the row", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let row = client
        .query_opt(&stmt, &[&Some(id.into_inner())])
        .await?
        .ok_or_else(|| ApiError::NotFound("Provider not found".into()))?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    name: String,
    api_base_url: Option<String>,
    api_type: Option<String>,
    #[serde(default)]
    is_local: bool,
}

/// A name the gateway can address as `name/model`: letters, digits, `-`, `_`, `.`.
fn name_ok(name: &str) -> bool {
    line_ok(name, 1, 50)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn url_ok(url: &str) -> bool {
    line_ok(url, 1, 2048)
        && reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

#[utoipa::path(
    post,
    path = "/providers",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 row; the name is stored lower-cased", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 403, description = "Admin access required", body = Detail),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    // The catalogue decides where prompts (and keys) go: an administrator's to change.
    user.require_admin()?;
    let body = body.into_inner();
    let name = body.name.trim().to_lowercase();
    Violations::new()
        .check(
            name_ok(&name),
            "name",
            "name must be 1 to 50 letters, digits, '-', '_' or '.'",
        )
        .check(
            opt_line_ok(&body.api_base_url, 2048)
                && body.api_base_url.as_deref().is_none_or(url_ok),
            "api_base_url",
            "api_base_url must be an http(s) URL of at most 2048 characters",
        )
        .check(
            body.api_type
                .as_deref()
                .is_none_or(|t| API_TYPES.contains(&t)),
            "api_type",
            "api_type must be one of anthropic, openai, ollama, gemini",
        )
        .finish()?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            CREATE_SQL,
            &[&name, &body.api_base_url, &body.api_type, &body.is_local],
        )
        .await?
        .ok_or_else(|| ApiError::BadRequest("Provider with this name already exists".into()))?;
    Ok(HttpResponse::Created().json(rows::to_json(&row)?))
}

/// 204 whether or not the provider existed (contract §2.4). Its models go with it; agents that
/// used them keep running on the default model.
#[utoipa::path(
    delete,
    path = "/providers/{provider_id}",
    params(("provider_id" = i64, Path, description = "Provider id")),
    responses(
        (status = 204, description = "Done"),
        (status = 403, description = "Admin access required", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    // The catalogue decides where prompts (and keys) go: an administrator's to change.
    user.require_admin()?;
    let client = state.pool.get().await?;
    client
        .execute(
            "DELETE FROM agent.providers WHERE id = $1",
            &[&id.into_inner()],
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
