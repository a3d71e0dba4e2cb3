//! `/models`: the model catalogue (prices in USD per million tokens), each row with its
//! provider's name.

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::input::{Refusal, line_ok, opt_line_ok, refusal};
use super::rows;
use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// The columns of a model row (prices cast from `numeric`), over `m` (models) and `p`
/// (providers).
macro_rules! columns {
    () => {
        "SELECT m.id, m.provider_id, m.model_name, m.model_alias, m.model_type,
                m.pricing_in::float8 AS pricing_in, m.pricing_out::float8 AS pricing_out,
                m.pricing_cache_read::float8 AS pricing_cache_read,
                m.pricing_cache_write::float8 AS pricing_cache_write,
                m.extended_thinking, m.vision, m.function_calling, m.streaming, m.context_window,
                m.max_output, m.release_date, m.is_deprecated, m.created_at, m.updated_at,
                p.name AS provider_name "
    };
}

const LIST_SQL: &str = concat!(
    columns!(),
    "FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id
     WHERE ($1::int8 IS NULL OR m.provider_id = $1) AND ($2 OR NOT m.is_deprecated)
     ORDER BY p.name, m.model_alias, m.id"
);

const GET_SQL: &str = concat!(
    columns!(),
    "FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id WHERE m.id = $1"
);

const CREATE_SQL: &str = concat!(
    "WITH m AS (
        INSERT INTO agent.models (provider_id, model_name, model_alias, pricing_in, pricing_out,
            pricing_cache_read, pricing_cache_write, extended_thinking, vision, function_calling,
            streaming, context_window, max_output, release_date, is_deprecated)
        VALUES ($1, $2, $3, $4::float8, $5::float8, $6::float8, $7::float8, $8, $9, $10, $11, $12,
                $13, $14, $15)
        RETURNING *) ",
    columns!(),
    "FROM m JOIN agent.providers p ON p.id = m.provider_id"
);

const UPDATE_SQL: &str = concat!(
    "WITH m AS (
        UPDATE agent.models SET model_alias = COALESCE($2, model_alias),
            pricing_in = COALESCE($3::float8::numeric, pricing_in),
            pricing_out = COALESCE($4::float8::numeric, pricing_out),
            is_deprecated = COALESCE($5, is_deprecated)
        WHERE id = $1
        RETURNING *) ",
    columns!(),
    "FROM m JOIN agent.providers p ON p.id = m.provider_id"
);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    provider_id: Option<i64>,
    #[serde(default)]
    include_deprecated: bool,
}

#[utoipa::path(
    get,
    path = "/models",
    params(ListQuery),
    responses(
        (status = 200, description = "`{models[row + provider_name], total}`, ordered by provider name, then model_alias", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let rows = client
        .query(&stmt, &[&q.provider_id, &q.include_deprecated])
        .await?;
    let models = rows::all_to_json(&rows)?;
    Ok(HttpResponse::Ok().json(json!({"total": models.len(), "models": models})))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Model not found".into())
}

#[utoipa::path(
    get,
    path = "/models/{model_id}",
    params(("model_id" = i64, Path, description = "Model id")),
    responses(
        (status = 200, description = "row + provider_name", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(GET_SQL).await?;
    let row = client
        .query_opt(&stmt, &[&id.into_inner()])
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    provider_id: i64,
    model_name: String,
    model_alias: Option<String>,
    pricing_in: Option<f64>,
    pricing_out: Option<f64>,
    pricing_cache_read: Option<f64>,
    pricing_cache_write: Option<f64>,
    #[serde(default)]
    extended_thinking: bool,
    #[serde(default)]
    vision: bool,
    #[serde(default = "default_true")]
    function_calling: bool,
    #[serde(default = "default_true")]
    streaming: bool,
    context_window: Option<i32>,
    max_output: Option<i32>,
    release_date: Option<String>,
    #[serde(default)]
    is_deprecated: bool,
}

fn price_ok(p: Option<f64>) -> bool {
    p.is_none_or(|p| p.is_finite() && (0.0..1_000_000.0).contains(&p))
}

/// What a unique or foreign-key refusal on `agent.models` means to the caller.
fn refused(e: gathering_db::tokio_postgres::Error) -> ApiError {
    match refusal(&e) {
        Some(Refusal::Missing(_)) => ApiError::BadRequest("Provider not found".into()),
        Some(Refusal::Duplicate(c)) if c.contains("alias") => {
            ApiError::BadRequest("A model with this alias already exists".into())
        }
        Some(Refusal::Duplicate(_)) => {
            ApiError::BadRequest("This provider already has a model with this name".into())
        }
        None => e.into(),
    }
}

#[utoipa::path(
    post,
    path = "/models",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 row. A model row = these fields + `id, created_at, updated_at`", body = Object),
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
    let b = body.into_inner();
    let release = b
        .release_date
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"));
    Violations::new()
        .check(
            line_ok(&b.model_name, 1, 100),
            "model_name",
            "model_name must be 1 to 100 characters",
        )
        .check(
            b.model_alias.as_deref().is_none_or(|a| line_ok(a, 1, 100)),
            "model_alias",
            "model_alias must be 1 to 100 characters",
        )
        .check(price_ok(b.pricing_in), "pricing_in", "price must be >= 0")
        .check(price_ok(b.pricing_out), "pricing_out", "price must be >= 0")
        .check(
            price_ok(b.pricing_cache_read),
            "pricing_cache_read",
            "price must be >= 0",
        )
        .check(
            price_ok(b.pricing_cache_write),
            "pricing_cache_write",
            "price must be >= 0",
        )
        .check(
            b.context_window.is_none_or(|n| n > 0),
            "context_window",
            "context_window must be positive",
        )
        .check(
            b.max_output.is_none_or(|n| n > 0),
            "max_output",
            "max_output must be positive",
        )
        .check(
            release.as_ref().is_none_or(Result::is_ok),
            "release_date",
            "release_date must be a date (YYYY-MM-DD)",
        )
        .finish()?;
    let release: Option<NaiveDate> = release.and_then(Result::ok);
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            CREATE_SQL,
            &[
                &b.provider_id,
                &b.model_name,
                &b.model_alias,
                &b.pricing_in,
                &b.pricing_out,
                &b.pricing_cache_read,
                &b.pricing_cache_write,
                &b.extended_thinking,
                &b.vision,
                &b.function_calling,
                &b.streaming,
                &b.context_window,
                &b.max_output,
                &release,
                &b.is_deprecated,
            ],
        )
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Created().json(rows::to_json(&row)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateBody {
    model_alias: Option<String>,
    pricing_in: Option<f64>,
    pricing_out: Option<f64>,
    is_deprecated: Option<bool>,
}

/// Changes the given fields; `null` ones are left as they are.
#[utoipa::path(
    patch,
    path = "/models/{model_id}",
    params(("model_id" = i64, Path, description = "Model id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "row", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 403, description = "Admin access required", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    // The catalogue decides where prompts (and keys) go: an administrator's to change.
    user.require_admin()?;
    let b = body.into_inner();
    Violations::new()
        .check(
            opt_line_ok(&b.model_alias, 100)
                && b.model_alias
                    .as_deref()
                    .is_none_or(|a| !a.trim().is_empty()),
            "model_alias",
            "model_alias must be 1 to 100 characters",
        )
        .check(price_ok(b.pricing_in), "pricing_in", "price must be >= 0")
        .check(price_ok(b.pricing_out), "pricing_out", "price must be >= 0")
        .finish()?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            UPDATE_SQL,
            &[
                &id.into_inner(),
                &b.model_alias,
                &b.pricing_in,
                &b.pricing_out,
                &b.is_deprecated,
            ],
        )
        .await
        .map_err(refused)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}

/// 204 whether or not the model existed. Agents on it fall back to the default model.
#[utoipa::path(
    delete,
    path = "/models/{model_id}",
    params(("model_id" = i64, Path, description = "Model id")),
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
            "DELETE FROM agent.models WHERE id = $1",
            &[&id.into_inner()],
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
