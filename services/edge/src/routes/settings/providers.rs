//! `/settings/providers/…` (contract §2.12): provider keys, default models and base URLs, and a
//! connection test. The LLM gateway owns these settings and is the only process that talks to
//! providers: reading what is in use, storing a change and probing all go through its gRPC
//! API, so what the dashboard shows is what the gateway does.
//!
//! Unlike the earlier implementation nothing rewrites a `.env` file: a key set here is sealed
//! by the gateway with `GATHERING_MASTER_KEY`, bound to the base URL it is stored for, and used
//! by every gateway at once. Keys are only ever shown masked (`abcd...wxyz`).

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

/// Providers always listed, besides those of `agent.providers`.
pub(super) const BASE_PROVIDERS: [&str; 6] = [
    "anthropic",
    "openai",
    "deepseek",
    "mistral",
    "google",
    "ollama",
];

/// Every provider name settings list: the base ones, then the catalogue's.
pub(super) async fn provider_names(state: &AppState) -> Result<Vec<String>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query("SELECT name FROM agent.providers ORDER BY name", &[])
        .await?;
    let mut names: Vec<String> = BASE_PROVIDERS.iter().map(|s| (*s).to_owned()).collect();
    for r in rows {
        let n: String = r.try_get(0)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

/// One provider as the contract shows it, from the gateway's view.
pub(super) fn provider_json(p: &pb::ProviderSettings, models: Vec<Value>) -> Value {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let default_model = nonempty(&p.default_model)
        .or_else(|| (p.provider == "ollama").then(|| "llama3.2".to_owned()));
    json!({
        "api_key": nonempty(&p.masked_key),
        "key_source": nonempty(&p.key_source),
        "default_model": default_model,
        "base_url": nonempty(&p.base_url),
        "is_configured": p.is_configured,
        "note": nonempty(&p.note),
        "models": models,
    })
}

/// The gateway's view of `names`.
pub(super) async fn gateway_view(
    state: &AppState,
    names: Vec<String>,
) -> Result<Vec<pb::ProviderSettings>, ApiError> {
    Ok(state
        .llm
        .grpc()
        .get_provider_settings(pb::GetProviderSettingsRequest { providers: names })
        .await?
        .into_inner()
        .providers)
}

async fn known_provider(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let name = raw.to_ascii_lowercase();
    if provider_names(state).await?.contains(&name) {
        Ok(name)
    } else {
        Err(ApiError::NotFound(format!(
            "Provider '{}' not found",
            raw.chars().take(50).collect::<String>()
        )))
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ProviderPatch {
    /// 8 to 512 characters without spaces; empty removes the stored key.
    api_key: Option<String>,
    /// At most 100 characters.
    default_model: Option<String>,
    /// An http:// or https:// URL of at most 500 characters; empty for the default.
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

/// Sets a provider's key, default model or base URL (administrators); the gateway seals and
/// uses them.
#[utoipa::path(
    patch,
    path = "/settings/providers/{provider}",
    params(("provider" = String, Path, description = "Provider name")),
    request_body = ProviderPatch,
    responses(
        (status = 200, description = "The provider: `api_key` (masked), `key_source`, `default_model`, `base_url`, `is_configured`, `note`, `models`", body = Object),
        (status = 400, description = "Refused by the gateway", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "Unknown provider", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn patch_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: web::Json<ProviderPatch>,
) -> Result<HttpResponse, ApiError> {
    // Provider keys decide where prompts and spend go: an administrator's to change.
    user.require_admin()?;
    let name = known_provider(&state, &path).await?;
    let patch = body.into_inner();
    validate_patch(&patch)?;
    let updated = state
        .llm
        .grpc()
        .set_provider_settings(pb::SetProviderSettingsRequest {
            provider: name,
            api_key: patch.api_key,
            default_model: patch.default_model,
            base_url: patch.base_url,
        })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(provider_json(&updated, Vec::new())))
}

/// Probes a provider's connection through the gateway (administrators): `success`, `message`,
/// and on success `models`.
#[utoipa::path(
    post,
    path = "/settings/providers/{provider}/test",
    params(("provider" = String, Path, description = "Provider name")),
    responses(
        (status = 200, description = "The probe's outcome: `success`, `message`, `models`?", body = Object),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "Unknown provider", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn test_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let name = path.to_ascii_lowercase();
    if !BASE_PROVIDERS.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "Provider '{}' not found",
            path.chars().take(50).collect::<String>()
        )));
    }
    let r = state
        .llm
        .grpc()
        .probe_provider(pb::ProbeProviderRequest { provider: name })
        .await?
        .into_inner();
    let mut body = json!({"success": r.success, "message": r.message});
    if r.success {
        body["models"] = json!(r.models);
    }
    Ok(HttpResponse::Ok().json(body))
}
