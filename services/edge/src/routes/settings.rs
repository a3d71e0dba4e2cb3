//! `/settings` (contract §2.12): provider keys, default models and base URLs; application and
//! database settings; a connection test per provider.
//!
//! Unlike the earlier implementation, nothing rewrites a `.env` file or the process
//! environment: a key set here is sealed with `GATHERING_MASTER_KEY` (AES-256-GCM, associated
//! data `provider:<name>`, the same the gateway opens with) and stored in
//! `agent.provider_settings`; the write NOTIFYs `llm_settings` in the same statement, so every
//! gateway reloads and uses the key without a restart. Keys are only ever shown masked
//! (`abcd...wxyz`). A stored value wins over the environment (`{NAME}_API_KEY`, …).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use gathering_core::Secret;
use gathering_core::config::{ProcessEnv, Vars};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// Providers always listed, besides those of `agent.providers`.
const BASE_PROVIDERS: [&str; 6] = [
    "anthropic",
    "openai",
    "deepseek",
    "mistral",
    "google",
    "ollama",
];
const NOTIFY_CHANNEL: &str = "llm_settings";
const LOG_LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(get_settings))
        .route(
            "/settings/providers/{provider}",
            web::patch().to(patch_provider),
        )
        .route(
            "/settings/providers/{provider}/test",
            web::post().to(test_provider),
        )
        .route("/settings/application", web::patch().to(patch_application))
        .route("/settings/database", web::patch().to(patch_database));
}

/// Associated data of a sealed provider key (the gateway's `registry::key_context`).
fn key_context(provider: &str) -> String {
    format!("provider:{provider}")
}

fn env_var(name: &str, suffix: &str) -> Option<String> {
    ProcessEnv.get(&format!("{}_{suffix}", name.to_ascii_uppercase()))
}

fn public_base_url(name: &str) -> Option<&'static str> {
    match name {
        "openai" => Some("https://api.openai.com/v1"),
        "anthropic" => Some("https://api.anthropic.com"),
        "deepseek" => Some("https://api.deepseek.com/v1"),
        "mistral" => Some("https://api.mistral.ai/v1"),
        "google" => Some("https://generativelanguage.googleapis.com/v1"),
        "ollama" => Some("http://localhost:11434"),
        _ => None,
    }
}

/// A provider's stored settings, opened.
struct Stored {
    key: Option<Secret>,
    default_model: Option<String>,
    base_url: Option<String>,
}

async fn stored(state: &AppState, provider: &str) -> Result<Option<Stored>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT api_key_sealed, default_model, base_url FROM agent.provider_settings WHERE provider = $1",
            &[&provider],
        )
        .await?;
    Ok(row.map(|r| open_row(state, provider, r.get(0), r.get(1), r.get(2))))
}

fn open_row(
    state: &AppState,
    provider: &str,
    sealed: Option<Vec<u8>>,
    default_model: Option<String>,
    base_url: Option<String>,
) -> Stored {
    let key = sealed.and_then(
        |s| match state.master_key.open(&key_context(provider), &s) {
            Ok(plain) => String::from_utf8(plain).ok().map(Secret::new),
            Err(e) => {
                tracing::warn!(provider, error = %e, "stored provider key does not open");
                None
            }
        },
    );
    Stored {
        key,
        default_model,
        base_url,
    }
}

/// Effective settings of one provider (stored, else environment, else defaults).
struct Effective {
    key: Option<Secret>,
    key_source: Option<&'static str>,
    default_model: Option<String>,
    base_url: Option<String>,
}

fn effective(name: &str, stored: Option<&Stored>) -> Effective {
    let (key, key_source) = match (stored.and_then(|s| s.key.clone()), env_var(name, "API_KEY")) {
        (Some(k), _) => (Some(k), Some("stored")),
        (None, Some(k)) => (Some(Secret::new(k)), Some("environment")),
        (None, None) => (None, None),
    };
    let default_model = stored
        .and_then(|s| s.default_model.clone())
        .or_else(|| env_var(name, "DEFAULT_MODEL"))
        .or_else(|| (name == "ollama").then(|| "llama3.2".to_string()));
    let base_url = stored
        .and_then(|s| s.base_url.clone())
        .or_else(|| env_var(name, "BASE_URL"))
        .or_else(|| public_base_url(name).map(str::to_owned));
    Effective {
        key,
        key_source,
        default_model,
        base_url,
    }
}

fn provider_json(name: &str, eff: &Effective, models: Vec<Value>) -> Value {
    json!({
        "api_key": eff.key.as_ref().and_then(Secret::masked),
        "key_source": eff.key_source,
        "default_model": eff.default_model,
        "base_url": eff.base_url,
        "is_configured": eff.key.is_some() || name == "ollama",
        "models": models,
    })
}

async fn provider_names(state: &AppState) -> Result<Vec<String>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query("SELECT name FROM agent.providers ORDER BY name", &[])
        .await?;
    let mut names: Vec<String> = BASE_PROVIDERS.iter().map(|s| (*s).to_owned()).collect();
    for r in rows {
        let n: String = r.get(0);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

async fn app_settings(state: &AppState) -> Result<(Value, Value), ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query("SELECT name, value FROM agent.app_settings", &[])
        .await?;
    let mut application = json!({});
    let mut database = json!({});
    for r in rows {
        let name: String = r.get(0);
        let value: Value = r.get(1);
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
    let extensions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
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

async fn get_settings(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let names = provider_names(&state).await?;
    let client = state.pool.get().await?;
    let stored_rows = client
        .query(
            "SELECT provider, api_key_sealed, default_model, base_url FROM agent.provider_settings",
            &[],
        )
        .await?;
    let model_rows = client
        .query(
            "SELECT p.name, m.id, m.model_name, m.model_alias, m.vision, m.extended_thinking \
             FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
             WHERE NOT m.is_deprecated ORDER BY p.name, m.model_alias NULLS LAST, m.model_name",
            &[],
        )
        .await?;
    drop(client);
    let mut stored: BTreeMap<String, Stored> = BTreeMap::new();
    for r in stored_rows {
        let provider: String = r.get(0);
        let s = open_row(&state, &provider, r.get(1), r.get(2), r.get(3));
        stored.insert(provider, s);
    }
    let mut models: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in model_rows {
        models
            .entry(r.get::<_, String>(0))
            .or_default()
            .push(json!({
                "id": r.get::<_, i64>(1),
                "model_name": r.get::<_, String>(2),
                "model_alias": r.get::<_, Option<String>>(3),
                "vision": r.get::<_, bool>(4),
                "extended_thinking": r.get::<_, bool>(5),
            }));
    }
    let mut providers = serde_json::Map::new();
    for name in names {
        let eff = effective(&name, stored.get(&name));
        let m = models.remove(&name).unwrap_or_default();
        providers.insert(name.clone(), provider_json(&name, &eff, m));
    }
    let (application, database) = app_settings(&state).await?;
    Ok(HttpResponse::Ok().json(json!({
        "providers": providers,
        "database": database_json(&state, &database).await?,
        "application": application_json(&state, &application),
    })))
}

#[derive(Deserialize)]
struct ProviderPatch {
    api_key: Option<String>,
    default_model: Option<String>,
    base_url: Option<String>,
}

fn validate_patch(p: &ProviderPatch) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(k) = &p.api_key
        && !k.is_empty()
        && (k.len() < 8 || k.len() > 512 || k.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        errors.push(FieldError::body(
            "api_key",
            "must be 8-512 characters without spaces (or empty to remove the stored key)",
        ));
    }
    if let Some(m) = &p.default_model
        && (m.chars().count() > 100 || m.chars().any(char::is_control))
    {
        errors.push(FieldError::body(
            "default_model",
            "must be at most 100 characters",
        ));
    }
    if let Some(u) = &p.base_url {
        let scheme_ok = u.starts_with("http://") || u.starts_with("https://");
        if !u.is_empty()
            && (!scheme_ok
                || u.len() > 500
                || u.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            errors.push(FieldError::body(
                "base_url",
                "must be an http:// or https:// URL of at most 500 characters",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

async fn known_provider(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let name = raw.to_ascii_lowercase();
    if provider_names(state).await?.contains(&name) {
        Ok(name)
    } else {
        Err(ApiError::NotFound(format!(
            "Provider '{}' not found",
            truncate(raw, 50)
        )))
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

async fn patch_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: web::Json<ProviderPatch>,
) -> Result<HttpResponse, ApiError> {
    // Provider keys and application settings are an administrator's to change.
    user.require_admin()?;
    let name = known_provider(&state, &path).await?;
    let patch = body.into_inner();
    validate_patch(&patch)?;
    let sealed: Option<Vec<u8>> = match patch.api_key.as_deref() {
        Some(k) if !k.is_empty() => Some(
            state
                .master_key
                .seal(&key_context(&name), k.as_bytes())
                .map_err(ApiError::internal)?,
        ),
        _ => None,
    };
    let set_key = patch.api_key.is_some();
    let set_model = patch.default_model.is_some();
    let set_url = patch.base_url.is_some();
    let model = patch.default_model.filter(|m| !m.is_empty());
    let url = patch
        .base_url
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned());
    let client = state.pool.get().await?;
    // One statement: the upsert and the notification commit together.
    let row = client
        .query_one(
            "WITH up AS ( \
                INSERT INTO agent.provider_settings AS s (provider, api_key_sealed, default_model, base_url, key_updated_at) \
                VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) \
                ON CONFLICT (provider) DO UPDATE SET \
                    api_key_sealed = CASE WHEN $5 THEN EXCLUDED.api_key_sealed ELSE s.api_key_sealed END, \
                    key_updated_at = CASE WHEN $5 THEN now() ELSE s.key_updated_at END, \
                    default_model = CASE WHEN $6 THEN EXCLUDED.default_model ELSE s.default_model END, \
                    base_url = CASE WHEN $7 THEN EXCLUDED.base_url ELSE s.base_url END, \
                    updated_at = now() \
                RETURNING api_key_sealed, default_model, base_url) \
             SELECT up.api_key_sealed, up.default_model, up.base_url, pg_notify($8, $1) FROM up",
            &[&name, &sealed, &model, &url, &set_key, &set_model, &set_url, &NOTIFY_CHANNEL],
        )
        .await?;
    let st = open_row(&state, &name, row.get(0), row.get(1), row.get(2));
    tracing::info!(provider = %name, key_changed = set_key, "provider settings updated");
    let eff = effective(&name, Some(&st));
    Ok(HttpResponse::Ok().json(provider_json(&name, &eff, Vec::new())))
}

fn http_client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    gathering_core::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(ApiError::internal)?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Removes the key from a message that might echo it.
fn scrub(text: &str, key: Option<&Secret>) -> String {
    let mut out: String = text.chars().take(300).collect();
    if let Some(k) = key
        && k.expose().len() >= 4
    {
        out = out.replace(k.expose(), "[redacted]");
    }
    out
}

async fn test_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Provider keys and application settings are an administrator's to change.
    user.require_admin()?;
    let name = path.to_ascii_lowercase();
    if !BASE_PROVIDERS.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "Provider '{}' not found",
            truncate(&path, 50)
        )));
    }
    let st = stored(&state, &name).await?;
    let eff = effective(&name, st.as_ref());
    if eff.key.is_none() && name != "ollama" {
        return Ok(HttpResponse::Ok().json(json!({
            "success": false,
            "message": format!("No API key configured for {name}"),
        })));
    }
    let base = eff.base_url.clone().unwrap_or_default();
    let base = base.trim_end_matches('/');
    let client = http_client()?;
    let req = match name.as_str() {
        "ollama" => client.get(format!("{base}/api/tags")),
        "anthropic" => client
            .get(format!("{base}/v1/models"))
            .header("x-api-key", eff.key.as_ref().map_or("", |k| k.expose()))
            .header("anthropic-version", "2023-06-01"),
        "google" => client.get(format!("{base}/models")).header(
            "x-goog-api-key",
            eff.key.as_ref().map_or("", |k| k.expose()),
        ),
        _ => client
            .get(format!("{base}/models"))
            .bearer_auth(eff.key.as_ref().map_or("", |k| k.expose())),
    };
    let result = match req.send().await {
        Err(e) => {
            json!({"success": false, "message": scrub(&format!("Connection failed: {e}"), eff.key.as_ref())})
        }
        Ok(resp) if !resp.status().is_success() => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            json!({"success": false, "message": scrub(&format!("HTTP {status}: {text}"), eff.key.as_ref())})
        }
        Ok(resp) => {
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            let models: Vec<String> = if name == "ollama" {
                v.get("models")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| {
                                m.get("name").and_then(Value::as_str).map(str::to_owned)
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                v.get("data")
                    .or_else(|| v.get("models"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| {
                                m.get("id")
                                    .or_else(|| m.get("name"))
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            json!({"success": true, "message": format!("Connected to {name}: {} models", models.len()), "models": models})
        }
    };
    Ok(HttpResponse::Ok().json(result))
}

#[derive(Deserialize)]
struct ApplicationPatch {
    debug: Option<bool>,
    log_level: Option<String>,
}

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

#[derive(Deserialize)]
struct DatabasePatch {
    pool_size: Option<i64>,
    max_overflow: Option<i64>,
}

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
    Ok(row.get(0))
}
