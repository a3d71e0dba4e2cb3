//! The registry: which providers exist, how to reach them, with which key, and the model
//! catalogue (`agent.providers`, `agent.models`) with its prices.
//!
//! It is an immutable snapshot behind a lock held only to clone an `Arc`, so the request path
//! never touches the database. A reloader task rebuilds the snapshot when the edge stores a
//! setting (`NOTIFY llm_settings`, sent in the same transaction as the change) and every
//! `LLM_REGISTRY_REFRESH_MS` as a backstop, so a key stored through the edge is used without a
//! restart. Any write to the catalogue tables notifies too (a trigger), so a catalogue change
//! reaches every gateway within a second.
//!
//! Base URL precedence: stored through `/settings`, then the environment (`{NAME}_BASE_URL`),
//! then the catalogue's `api_base_url`, then the provider's public default.
//!
//! **Keys are bound to where they were configured.** A key from the environment is sent only
//! to the environment's base URL or, when none is set, the provider's built-in public host; a
//! stored key only to the base URL recorded with it when it was stored (`key_base_url`). When
//! the effective URL is anywhere else (an admin pointed the catalogue elsewhere), the provider
//! has no key until one is entered for the new host: changing a URL never carries a key along.
//! Calls to URLs an admin set (catalogue or settings) of non-local providers go through the
//! outbound guard ([`gathering_net::NetGuard`]); URLs from the environment or built in do not.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_core::seal::MasterKey;
use gathering_db::Pool;
use gathering_net::NetGuard;

use crate::config::{Config, ProviderEnv};
use crate::error::GatewayError;
use crate::provider::{Endpoint, Wire, mock};

mod binding;

use binding::CatalogueProvider;
pub(crate) use binding::{Stored, pick_base_url};

/// The NOTIFY channel the edge signals on when provider settings change.
pub const SETTINGS_CHANNEL: &str = "llm_settings";

/// Associated data of a sealed provider key; the edge seals with the same.
pub fn key_context(provider: &str) -> String {
    format!("provider:{provider}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Chat,
    Embedding,
}

#[derive(Debug, Clone)]
pub struct ModelEntry {
    pub provider: Arc<str>,
    pub name: String,
    pub alias: Option<String>,
    pub kind: ModelKind,
    /// USD per million tokens.
    pub price_in: Option<f64>,
    pub price_out: Option<f64>,
    pub context_window: Option<i32>,
    pub function_calling: bool,
    pub vision: bool,
    pub deprecated: bool,
}

#[derive(Debug)]
pub struct ProviderEntry {
    pub endpoint: Endpoint,
    /// `stored` (through the edge) or `environment`.
    pub key_source: Option<&'static str>,
    /// Why calls cannot be made (an API type this gateway does not speak, a base URL the
    /// outbound guard refuses).
    pub unsupported: Option<String>,
    /// Why a configured key is not used (bound to another base URL).
    pub key_note: Option<String>,
    /// The default model set through `/settings` or `{NAME}_DEFAULT_MODEL`.
    pub default_model: Option<String>,
}

impl ProviderEntry {
    /// Whether a call could be made now (a key, unless local; a supported API).
    pub fn available(&self) -> bool {
        self.unsupported.is_none()
            && (self.endpoint.key.is_some()
                || self.endpoint.is_local
                || self.endpoint.wire == Wire::Mock)
    }
}

/// A resolved model name: where to send it and what it costs.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<ProviderEntry>,
    /// The name the provider knows.
    pub model: String,
    /// `provider/model`: what responses report, the circuit-breaker key.
    pub label: String,
    pub price: Option<(f64, f64)>,
}

impl Target {
    pub fn cost(&self, input: u32, output: u32) -> Option<f64> {
        self.price
            .map(|(pi, po)| (f64::from(input) * pi + f64::from(output) * po) / 1_000_000.0)
    }
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub providers: HashMap<String, Arc<ProviderEntry>>,
    pub models: Vec<ModelEntry>,
    by_alias: HashMap<String, usize>,
    by_provider_name: HashMap<(String, String), usize>,
    /// Model names that belong to exactly one provider.
    by_unique_name: HashMap<String, usize>,
    /// Every key in use, for redaction.
    pub secrets: Vec<String>,
}

impl Snapshot {
    pub fn resolve(&self, name: &str) -> Result<Target, GatewayError> {
        crate::model::check_model_name(name)?;
        if let Some((provider, model)) = name.split_once('/') {
            let entry = self
                .providers
                .get(provider)
                .ok_or_else(|| GatewayError::UnknownModel(name.to_owned()))?;
            if model.is_empty() {
                return Err(GatewayError::UnknownModel(name.to_owned()));
            }
            let key = (provider.to_owned(), model.to_owned());
            let found = self
                .by_provider_name
                .get(&key)
                .map(|i| &self.models[*i])
                .or_else(|| {
                    self.by_alias
                        .get(model)
                        .map(|i| &self.models[*i])
                        .filter(|m| &*m.provider == provider)
                });
            return Ok(match found {
                Some(m) => self.target(entry, m),
                None => Target {
                    provider: entry.clone(),
                    model: model.to_owned(),
                    label: name.to_owned(),
                    price: None,
                },
            });
        }
        let index = self
            .by_alias
            .get(name)
            .or_else(|| self.by_unique_name.get(name))
            .ok_or_else(|| GatewayError::UnknownModel(name.to_owned()))?;
        let m = &self.models[*index];
        let entry = self
            .providers
            .get(&*m.provider)
            .ok_or_else(|| GatewayError::UnknownModel(name.to_owned()))?;
        Ok(self.target(entry, m))
    }

    fn target(&self, entry: &Arc<ProviderEntry>, m: &ModelEntry) -> Target {
        Target {
            provider: entry.clone(),
            model: m.name.clone(),
            label: format!("{}/{}", m.provider, m.name),
            price: match (m.price_in, m.price_out) {
                (None, None) => None,
                (i, o) => Some((i.unwrap_or(0.0), o.unwrap_or(0.0))),
            },
        }
    }
}

/// What the registry needs from the configuration.
#[derive(Debug, Clone)]
pub struct Sources {
    pub providers: HashMap<String, ProviderEnv>,
    pub master_key: MasterKey,
    pub use_mock: bool,
    /// Checks base URLs an admin set (IP literals here; names when connecting).
    pub guard: NetGuard,
}

impl Sources {
    pub fn from_config(config: &Config) -> Sources {
        Sources {
            providers: config.providers.clone(),
            master_key: config.master_key.clone(),
            use_mock: config.use_mock_providers,
            guard: NetGuard::new(config.http_allowlist.clone()),
        }
    }
}

pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
    pub(crate) sources: Sources,
}

/// Public defaults for providers the catalogue may not list.
pub fn builtin(name: &str) -> Option<(Wire, &'static str, bool)> {
    match name {
        "openai" => Some((Wire::OpenAi, "https://api.openai.com/v1", false)),
        "anthropic" => Some((Wire::Anthropic, "https://api.anthropic.com", false)),
        "deepseek" => Some((Wire::OpenAi, "https://api.deepseek.com/v1", false)),
        "ollama" => Some((Wire::Ollama, "http://localhost:11434", true)),
        "mistral" => Some((Wire::OpenAi, "https://api.mistral.ai/v1", false)),
        _ => None,
    }
}

impl Registry {
    pub fn new(sources: Sources) -> Registry {
        Registry {
            current: RwLock::new(Arc::new(Snapshot::default())),
            sources,
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the snapshot from the database and the environment.
    pub async fn reload(&self, pool: &Pool) -> Result<(), gathering_db::DbError> {
        let client = pool.get().await?;
        let provider_rows = client
            .query(
                "SELECT name, api_base_url, api_type, is_local FROM agent.providers",
                &[],
            )
            .await?;
        let model_rows = client
            .query(
                "SELECT p.name, m.model_name, m.model_alias, m.model_type, \
                        m.pricing_in::float8, m.pricing_out::float8, m.context_window, \
                        m.function_calling, m.vision, m.is_deprecated \
                 FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                 ORDER BY p.name, m.model_name",
                &[],
            )
            .await?;
        let stored_rows = client
            .query(
                "SELECT provider, api_key_sealed, base_url, key_base_url, default_model \
                 FROM agent.provider_settings",
                &[],
            )
            .await?;
        drop(client);

        let catalogue: HashMap<String, CatalogueProvider> = provider_rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, String>(0)?,
                    CatalogueProvider {
                        base_url: r.try_get(1)?,
                        api_type: r.try_get(2)?,
                        is_local: r.try_get(3)?,
                    },
                ))
            })
            .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?;
        let stored: HashMap<String, Stored> = stored_rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, String>(0)?,
                    Stored {
                        key: r.try_get(1)?,
                        base_url: r.try_get(2)?,
                        key_base_url: r.try_get(3)?,
                        default_model: r.try_get(4)?,
                    },
                ))
            })
            .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?;
        let models = model_rows
            .iter()
            .map(|r| {
                Ok(ModelEntry {
                    provider: Arc::from(r.try_get::<_, String>(0)?),
                    name: r.try_get(1)?,
                    alias: r.try_get(2)?,
                    kind: if r.try_get::<_, String>(3)? == "embedding" {
                        ModelKind::Embedding
                    } else {
                        ModelKind::Chat
                    },
                    price_in: r.try_get(4)?,
                    price_out: r.try_get(5)?,
                    context_window: r.try_get(6)?,
                    function_calling: r.try_get(7)?,
                    vision: r.try_get(8)?,
                    deprecated: r.try_get(9)?,
                })
            })
            .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?;
        let snapshot = self.build(&catalogue, &stored, models);
        match self.current.write() {
            Ok(mut s) => *s = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
        Ok(())
    }

    fn build(
        &self,
        catalogue: &HashMap<String, CatalogueProvider>,
        stored: &HashMap<String, Stored>,
        mut models: Vec<ModelEntry>,
    ) -> Snapshot {
        let mut names: Vec<String> = catalogue.keys().cloned().collect();
        for n in ["openai", "anthropic", "deepseek", "ollama"] {
            names.push(n.to_owned());
        }
        for (n, env) in &self.sources.providers {
            if env.api_key.is_some() || env.base_url.is_some() {
                names.push(n.clone());
            }
        }
        names.sort();
        names.dedup();

        let mut providers = HashMap::new();
        let mut secrets = Vec::new();
        for name in names {
            if name == mock::PROVIDER {
                continue;
            }
            let env = self
                .sources
                .providers
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let cat = catalogue.get(&name);
            let builtin = builtin(&name);
            let (wire, unsupported) = match (cat, builtin) {
                (Some(c), _) => match Wire::from_api_type(&c.api_type) {
                    Some(w) => (w, None),
                    None => (
                        Wire::OpenAi,
                        Some(format!(
                            "api_type '{}' is not supported by the gateway",
                            c.api_type
                        )),
                    ),
                },
                (None, Some((w, _, _))) => (w, None),
                (None, None) => (Wire::OpenAi, None),
            };
            let st = stored.get(&name);
            let resolved = self.resolve_provider(&name, &env, cat, builtin, st);
            if let Some(k) = &resolved.key {
                secrets.push(k.expose().to_owned());
            }
            let unsupported = unsupported.or(resolved.refused);
            providers.insert(
                name.clone(),
                Arc::new(ProviderEntry {
                    endpoint: Endpoint {
                        provider: Arc::from(name.as_str()),
                        wire,
                        base_url: resolved.base_url,
                        key: resolved.key,
                        is_local: resolved.is_local,
                        guarded: resolved.guarded,
                    },
                    key_source: resolved.key_source,
                    unsupported,
                    key_note: resolved.key_note,
                    default_model: st
                        .and_then(|s| s.default_model.clone())
                        .or(env.default_model.clone()),
                }),
            );
        }
        if self.sources.use_mock {
            providers.insert(
                mock::PROVIDER.to_owned(),
                Arc::new(ProviderEntry {
                    endpoint: Endpoint {
                        provider: Arc::from(mock::PROVIDER),
                        wire: Wire::Mock,
                        base_url: String::new(),
                        key: None,
                        is_local: true,
                        guarded: false,
                    },
                    key_source: None,
                    unsupported: None,
                    key_note: None,
                    default_model: None,
                }),
            );
            for (name, kind) in [
                (mock::CHAT_MODEL, ModelKind::Chat),
                (mock::EMBED_MODEL, ModelKind::Embedding),
            ] {
                models.push(ModelEntry {
                    provider: Arc::from(mock::PROVIDER),
                    name: name.to_owned(),
                    alias: None,
                    kind,
                    price_in: Some(0.0),
                    price_out: Some(0.0),
                    context_window: Some(128_000),
                    function_calling: false,
                    vision: false,
                    deprecated: false,
                });
            }
        }

        let mut by_alias = HashMap::new();
        let mut by_provider_name = HashMap::new();
        let mut name_count: HashMap<String, (usize, usize)> = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            if let Some(a) = &m.alias {
                by_alias.insert(a.clone(), i);
            }
            by_provider_name.insert((m.provider.to_string(), m.name.clone()), i);
            name_count.entry(m.name.clone()).or_insert((i, 0)).1 += 1;
        }
        let by_unique_name = name_count
            .into_iter()
            .filter(|(_, (_, n))| *n == 1)
            .map(|(name, (i, _))| (name, i))
            .collect();
        Snapshot {
            providers,
            models,
            by_alias,
            by_provider_name,
            by_unique_name,
            secrets,
        }
    }
}

/// Keeps the registry current: on each settings notification, on reconnection of the
/// listener, and every `refresh`.
pub async fn run_reloader(
    registry: Arc<Registry>,
    pool: Pool,
    database_url: String,
    refresh: Duration,
    shutdown: Shutdown,
) {
    crate::reloader::reload_on_notify(SETTINGS_CHANNEL, database_url, refresh, shutdown, || {
        let (registry, pool) = (registry.clone(), pool.clone());
        async move {
            if let Err(e) = registry.reload(&pool).await {
                tracing::warn!(error = %e, "registry reload failed; keeping the previous one");
            }
        }
    })
    .await;
}
