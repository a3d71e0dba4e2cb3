//! Provider settings, owned by the gateway: it is the only writer of `agent.provider_settings`
//! and the only process that talks to providers, so storing a key, reporting what is in use and
//! probing a provider happen here (the edge calls these RPCs for admins).
//!
//! Storing a key binds it to the base URL the gateway would send it to at that moment
//! (`key_base_url`); see the registry's module doc for how the binding is enforced.

use std::sync::Arc;
use std::time::Duration;

use gathering_core::Secret;
use gathering_core::seal::MasterKey;
use gathering_db::Pool;
use gathering_proto::v1 as pb;
use serde_json::Value;
use tonic::Status;

use crate::engine::Clients;
use crate::provider::Wire;
use crate::redact::redact;
use crate::registry::{ProviderEntry, Registry, builtin, key_context, pick_base_url};

/// Providers the settings always list besides those of the catalogue.
pub const BASE_PROVIDERS: [&str; 6] = [
    "anthropic",
    "openai",
    "deepseek",
    "mistral",
    "google",
    "ollama",
];

/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct ProviderSettings {
    pool: Pool,
    registry: Arc<Registry>,
    clients: Clients,
    master_key: MasterKey,
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "provider settings");
    Status::internal("internal error")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

fn check_patch(req: &pb::SetProviderSettingsRequest) -> Result<(), Status> {
    let text_ok = |v: &str, max: usize| {
        v.chars().count() <= max && !v.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    if let Some(k) = req.api_key.as_deref()
        && !k.is_empty()
        && (k.len() < 8 || !text_ok(k, 512))
    {
        return Err(Status::invalid_argument(
            "api_key must be 8-512 characters without spaces",
        ));
    }
    if let Some(m) = req.default_model.as_deref()
        && (m.chars().count() > 100 || m.chars().any(char::is_control))
    {
        return Err(Status::invalid_argument(
            "default_model must be at most 100 characters",
        ));
    }
    if let Some(u) = req.base_url.as_deref()
        && !u.is_empty()
        && (!(u.starts_with("http://") || u.starts_with("https://"))
            || !text_ok(u, 500)
            || reqwest::Url::parse(u).is_err())
    {
        return Err(Status::invalid_argument(
            "base_url must be an http:// or https:// URL of at most 500 characters",
        ));
    }
    Ok(())
}

impl ProviderSettings {
    pub fn new(
        pool: Pool,
        registry: Arc<Registry>,
        clients: Clients,
        master_key: MasterKey,
    ) -> Self {
        Self {
            pool,
            registry,
            clients,
            master_key,
        }
    }

    fn view(name: &str, entry: Option<&Arc<ProviderEntry>>) -> pb::ProviderSettings {
        let Some(e) = entry else {
            return pb::ProviderSettings {
                provider: name.to_owned(),
                note: "not supported by the gateway".into(),
                ..Default::default()
            };
        };
        let ep = &e.endpoint;
        pb::ProviderSettings {
            provider: name.to_owned(),
            masked_key: ep.key.as_ref().and_then(Secret::masked).unwrap_or_default(),
            key_source: e.key_source.unwrap_or_default().to_owned(),
            default_model: e.default_model.clone().unwrap_or_default(),
            base_url: ep.base_url.clone(),
            is_configured: e.available(),
            note: e
                .unsupported
                .clone()
                .or_else(|| e.key_note.clone())
                .unwrap_or_default(),
        }
    }

    /// What the gateway uses for `names` (every provider it knows when empty).
    pub fn get(&self, names: &[String]) -> Vec<pb::ProviderSettings> {
        let snapshot = self.registry.snapshot();
        let mut all: Vec<String> = if names.is_empty() {
            snapshot.providers.keys().cloned().collect()
        } else {
            names.to_vec()
        };
        all.sort();
        all.dedup();
        all.iter()
            .map(|n| Self::view(n, snapshot.providers.get(n)))
            .collect()
    }

    /// Applies a settings change in one transaction (the table's trigger wakes every gateway),
    /// then reloads this gateway's registry so the answer shows the result.
    pub async fn set(
        &self,
        req: pb::SetProviderSettingsRequest,
    ) -> Result<pb::ProviderSettings, Status> {
        let name = req.provider.to_ascii_lowercase();
        if !valid_name(&name) {
            return Err(Status::invalid_argument("invalid provider name"));
        }
        check_patch(&req)?;
        let mut db = self.pool.get().await.map_err(internal)?;
        let tx = db.transaction().await.map_err(internal)?;
        let catalogue_url: Option<Option<String>> = tx
            .query_opt(
                "SELECT api_base_url FROM agent.providers WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(internal)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(internal)?;
        if catalogue_url.is_none() && !BASE_PROVIDERS.contains(&name.as_str()) {
            return Err(Status::not_found(format!("Provider '{name}' not found")));
        }
        let existing = tx
            .query_opt(
                "SELECT base_url FROM agent.provider_settings WHERE provider = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(internal)?;
        let old_base: Option<String> = match &existing {
            Some(r) => r.try_get(0).map_err(internal)?,
            None => None,
        };
        let new_base: Option<String> = match req.base_url.as_deref() {
            Some("") => None,
            Some(u) => Some(u.trim_end_matches('/').to_owned()),
            None => old_base,
        };
        // The URL this key will be sent to: the effective URL once this change applies.
        let env_url = self
            .registry
            .sources
            .providers
            .get(&name)
            .and_then(|e| e.base_url.clone());
        let (bound_url, _) = pick_base_url(
            new_base.as_deref(),
            env_url.as_deref(),
            catalogue_url.flatten().as_deref(),
            builtin(&name).map(|b| b.1),
        );
        let sealed: Option<Vec<u8>> = match req.api_key.as_deref() {
            Some(k) if !k.is_empty() => Some(
                self.master_key
                    .seal(&key_context(&name), k.as_bytes())
                    .map_err(internal)?,
            ),
            _ => None,
        };
        let key_bound: Option<&str> = sealed.as_ref().map(|_| bound_url.as_str());
        let model = req.default_model.as_deref().filter(|m| !m.is_empty());
        let (set_key, set_model, set_url) = (
            req.api_key.is_some(),
            req.default_model.is_some(),
            req.base_url.is_some(),
        );
        tx.execute(
            "INSERT INTO agent.provider_settings AS s \
                 (provider, api_key_sealed, key_base_url, default_model, base_url, key_updated_at) \
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END) \
             ON CONFLICT (provider) DO UPDATE SET \
                 api_key_sealed = CASE WHEN $6 THEN EXCLUDED.api_key_sealed ELSE s.api_key_sealed END, \
                 key_base_url = CASE WHEN $6 THEN EXCLUDED.key_base_url ELSE s.key_base_url END, \
                 key_updated_at = CASE WHEN $6 THEN now() ELSE s.key_updated_at END, \
                 default_model = CASE WHEN $7 THEN EXCLUDED.default_model ELSE s.default_model END, \
                 base_url = CASE WHEN $8 THEN EXCLUDED.base_url ELSE s.base_url END, \
                 updated_at = now()",
            &[
                &name, &sealed, &key_bound, &model, &new_base, &set_key, &set_model, &set_url,
            ],
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        drop(db);
        tracing::info!(provider = %name, key_changed = set_key, "provider settings updated");
        self.registry.reload(&self.pool).await.map_err(internal)?;
        let snapshot = self.registry.snapshot();
        Ok(Self::view(&name, snapshot.providers.get(&name)))
    }

    /// Lists the provider's models with the key and URL this gateway would use.
    pub async fn probe(&self, provider: &str) -> pb::ProbeProviderResponse {
        let failed = |message: String| pb::ProbeProviderResponse {
            success: false,
            message,
            models: Vec::new(),
        };
        let snapshot = self.registry.snapshot();
        let Some(entry) = snapshot.providers.get(provider) else {
            return failed(format!("{provider} is not supported by the gateway"));
        };
        if let Some(reason) = &entry.unsupported {
            return failed(reason.clone());
        }
        let ep = &entry.endpoint;
        if ep.key.is_none() && !ep.is_local && ep.wire != Wire::Mock {
            let mut msg = format!("No API key configured for {provider}");
            if let Some(note) = &entry.key_note {
                msg = format!("{msg} ({note})");
            }
            return failed(msg);
        }
        self.send_probe(entry, ep.key.as_ref(), &snapshot.secrets)
            .await
    }

    async fn send_probe(
        &self,
        entry: &ProviderEntry,
        key: Option<&Secret>,
        secrets: &[String],
    ) -> pb::ProbeProviderResponse {
        let ep = &entry.endpoint;
        let http = self.clients.for_endpoint(ep);
        let base = &ep.base_url;
        let req = match ep.wire {
            Wire::Ollama => http.get(format!("{base}/api/tags")),
            Wire::Anthropic => http
                .get(format!("{base}/v1/models"))
                .header("x-api-key", key.map_or("", |k| k.expose()))
                .header("anthropic-version", crate::provider::anthropic::API_VERSION),
            Wire::OpenAi => {
                let r = http.get(format!("{base}/models"));
                match key {
                    Some(k) => r.bearer_auth(k.expose()),
                    None => r,
                }
            }
            Wire::Mock => {
                return pb::ProbeProviderResponse {
                    success: true,
                    message: "mock provider".into(),
                    models: vec![crate::provider::mock::CHAT_MODEL.into()],
                };
            }
        };
        let outcome = async {
            let resp = req.timeout(PROBE_TIMEOUT).send().await?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        match outcome {
            Ok((status, body)) if status.is_success() => {
                let list = body
                    .get("data")
                    .or_else(|| body.get("models"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let models: Vec<String> = list
                    .iter()
                    .filter_map(|m| m.get("id").or_else(|| m.get("name")))
                    .filter_map(Value::as_str)
                    .take(500)
                    .map(str::to_owned)
                    .collect();
                pb::ProbeProviderResponse {
                    success: true,
                    message: format!("Connected to {}", ep.provider),
                    models,
                }
            }
            Ok((status, body)) => pb::ProbeProviderResponse {
                success: false,
                message: redact(
                    &format!("{} answered {status}: {body}", ep.provider),
                    secrets,
                ),
                models: Vec::new(),
            },
            Err(e) => pb::ProbeProviderResponse {
                success: false,
                message: redact(&format!("cannot reach {}: {e}", ep.provider), secrets),
                models: Vec::new(),
            },
        }
    }
}
