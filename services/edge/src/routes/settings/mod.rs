//! `/settings` (contract §2.12): provider settings (through the LLM gateway, see
//! [`providers`]), application and database settings stored in `agent.app_settings`. Reading
//! is open to every user (keys are masked); every write is an administrator's. The gateway's
//! virtual keys and team budgets ([`gateway_keys`]) are an administrator's to read too.

mod gateway_keys;
mod providers;

use std::collections::BTreeMap;
use std::str::FromStr;

use actix_web::{HttpResponse, web};
use gathering_core::config::{ProcessEnv, Vars};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

const LOG_LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_settings,
    providers::patch_provider,
    providers::test_provider,
    gateway_keys::create_key,
    gateway_keys::list_keys,
    gateway_keys::rotate_key,
    gateway_keys::revoke_key,
    gateway_keys::list_teams,
    gateway_keys::put_team,
    patch_application,
    patch_database
))]
pub(crate) struct Api;

/// 200 description of the application settings.
const APPLICATION: &str = "The application settings: `environment`, `debug`, `log_level`";
/// 200 description of the database settings.
const DATABASE: &str = "The database settings: `host`, `port`, `name`, `user`, `is_connected`, `pool_size`, `max_overflow`, `extensions`";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(get_settings))
        .route(
            "/settings/providers/{provider}",
            web::patch().to(providers::patch_provider),
        )
        .route(
            "/settings/providers/{provider}/test",
            web::post().to(providers::test_provider),
        )
        .route(
            "/settings/gateway-keys",
            web::post().to(gateway_keys::create_key),
        )
        .route(
            "/settings/gateway-keys",
            web::get().to(gateway_keys::list_keys),
        )
        .route(
            "/settings/gateway-keys/{id}/rotate",
            web::post().to(gateway_keys::rotate_key),
        )
        .route(
            "/settings/gateway-keys/{id}",
            web::delete().to(gateway_keys::revoke_key),
        )
        .route(
            "/settings/gateway-teams",
            web::get().to(gateway_keys::list_teams),
        )
        .route(
            "/settings/gateway-teams/{team}",
            web::put().to(gateway_keys::put_team),
        )
        .route("/settings/application", web::patch().to(patch_application))
        .route("/settings/database", web::patch().to(patch_database));
}

async fn app_settings(state: &AppState) -> Result<(Value, Value), ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query("SELECT name, value FROM agent.app_settings", &[])
        .await?;
    let mut application = json!({});
    let mut database = json!({});
    for r in rows {
        let name: String = r.try_get(0)?;
        let value: Value = r.try_get(1)?;
        if name == "application" {
            application = value;
        } else {
            database = value;
        }
    }
    Ok((application, database))
}

fn application_json(state: &AppState, stored: &Value) -> Value {
    let debug = stored
        .get("debug")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| {
            gathering_core::config::bool_or(&ProcessEnv, "DEBUG", state.config.env.is_development())
                .unwrap_or(false)
        });
    let log_level = stored
        .get("log_level")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| ProcessEnv.get("LOG_LEVEL").map(|l| l.to_ascii_uppercase()))
        .unwrap_or_else(|| "INFO".into());
    json!({"environment": state.config.env.as_str(), "debug": debug, "log_level": log_level})
}

async fn database_json(state: &AppState, stored: &Value) -> Result<Value, ApiError> {
    let parsed = gathering_db::tokio_postgres::Config::from_str(&state.config.database_url).ok();
    let host = parsed.as_ref().and_then(|c| {
        c.get_hosts().first().map(|h| match h {
            gathering_db::tokio_postgres::config::Host::Tcp(s) => s.clone(),
            gathering_db::tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
    });
    let port = parsed
        .as_ref()
        .and_then(|c| c.get_ports().first().copied())
        .unwrap_or(5432);
    let client = state.pool.get().await?;
    let rows = client
        .query("SELECT extname FROM pg_extension ORDER BY extname", &[])
        .await?;
    let extensions = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(json!({
        "host": host,
        "port": port,
        "name": parsed.as_ref().and_then(|c| c.get_dbname().map(str::to_owned)),
        "user": parsed.as_ref().and_then(|c| c.get_user().map(str::to_owned)),
        "is_connected": true,
        "pool_size": stored.get("pool_size").and_then(Value::as_u64).unwrap_or(state.config.pool_size as u64),
        "max_overflow": stored.get("max_overflow").and_then(Value::as_u64).unwrap_or(0),
        "extensions": extensions,
    }))
}

/// Every setting: `providers` (by name: `api_key` masked, `key_source`, `default_model`,
/// `base_url`, `is_configured`, `note`, `models`), `database` and `application`.
#[utoipa::path(
    get,
    path = "/settings",
    responses(
        (status = 200, description = "The settings", body = Object),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
async fn get_settings(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let names = providers::provider_names(&state).await?;
    let client = state.pool.get().await?;
    let model_rows = client
        .query(
            "SELECT p.name, m.id, m.model_name, m.model_alias, m.vision, m.extended_thinking \
             FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
             WHERE NOT m.is_deprecated ORDER BY p.name, m.model_alias NULLS LAST, m.model_name",
            &[],
        )
        .await?;
    drop(client);
    let mut models: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in model_rows {
        models
            .entry(r.try_get::<_, String>(0)?)
            .or_default()
            .push(json!({
                "id": r.try_get::<_, i64>(1)?,
                "model_name": r.try_get::<_, String>(2)?,
                "model_alias": r.try_get::<_, Option<String>>(3)?,
                "vision": r.try_get::<_, bool>(4)?,
                "extended_thinking": r.try_get::<_, bool>(5)?,
            }));
    }
    let mut providers = serde_json::Map::new();
    for p in providers::gateway_view(&state, names).await? {
        let m = models.remove(&p.provider).unwrap_or_default();
        providers.insert(p.provider.clone(), providers::provider_json(&p, m));
    }
    let (application, database) = app_settings(&state).await?;
    Ok(HttpResponse::Ok().json(json!({
        "providers": providers,
        "database": database_json(&state, &database).await?,
        "application": application_json(&state, &application),
    })))
}

#[derive(Deserialize, ToSchema)]
struct ApplicationPatch {
    debug: Option<bool>,
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` (any case).
    log_level: Option<String>,
}

/// Changes the application settings (administrators).
#[utoipa::path(
    patch,
    path = "/settings/application",
    request_body = ApplicationPatch,
    responses(
        (status = 200, description = APPLICATION, body = Object),
        (status = 400, description = "Unknown log level", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
    ),
)]
async fn patch_application(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ApplicationPatch>,
) -> Result<HttpResponse, ApiError> {
    // Provider keys and application settings are an administrator's to change.
    user.require_admin()?;
    let patch = body.into_inner();
    let mut value = serde_json::Map::new();
    if let Some(d) = patch.debug {
        value.insert("debug".into(), Value::Bool(d));
    }
    if let Some(l) = patch.log_level {
        let upper = l.to_ascii_uppercase();
        if !LOG_LEVELS.contains(&upper.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Invalid log level. Must be one of: {}",
                LOG_LEVELS.join(", ")
            )));
        }
        value.insert("log_level".into(), Value::String(upper));
    }
    let stored = upsert_app_setting(&state, "application", Value::Object(value)).await?;
    Ok(HttpResponse::Ok().json(application_json(&state, &stored)))
}

#[derive(Deserialize, ToSchema)]
struct DatabasePatch {
    /// 1 to 50.
    pool_size: Option<i64>,
    /// 0 to 100.
    max_overflow: Option<i64>,
}

/// Changes the stored database pool settings (administrators).
#[utoipa::path(
    patch,
    path = "/settings/database",
    request_body = DatabasePatch,
    responses(
        (status = 200, description = DATABASE, body = Object),
        (status = 403, description = "Administrators only", body = Detail),
    ),
)]
async fn patch_database(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DatabasePatch>,
) -> Result<HttpResponse, ApiError> {
    // Provider keys and application settings are an administrator's to change.
    user.require_admin()?;
    let patch = body.into_inner();
    let mut errors = Vec::new();
    let mut value = serde_json::Map::new();
    if let Some(n) = patch.pool_size {
        if (1..=50).contains(&n) {
            value.insert("pool_size".into(), json!(n));
        } else {
            errors.push(FieldError::body("pool_size", "must be between 1 and 50"));
        }
    }
    if let Some(n) = patch.max_overflow {
        if (0..=100).contains(&n) {
            value.insert("max_overflow".into(), json!(n));
        } else {
            errors.push(FieldError::body(
                "max_overflow",
                "must be between 0 and 100",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let stored = upsert_app_setting(&state, "database", Value::Object(value)).await?;
    Ok(HttpResponse::Ok().json(database_json(&state, &stored).await?))
}

/// Merges `value` into the stored JSON of `name`; returns the result.
async fn upsert_app_setting(state: &AppState, name: &str, value: Value) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO agent.app_settings AS s (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = s.value || EXCLUDED.value, updated_at = now() \
             RETURNING value",
            &[&name, &value],
        )
        .await?;
    Ok(row.try_get(0)?)
}
