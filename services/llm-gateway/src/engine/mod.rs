//! The gateway's core, shared by the gRPC and HTTP APIs: resolve the model and its fallbacks,
//! then for each in order — circuit breaker, concurrency slot, attempts with retries
//! (back-off with jitter, `Retry-After` honoured, never on a 4xx other than 429) — and record
//! usage once the call is over, whatever its outcome.
//!
//! Cancellation is structural: a call is a future (or a stream) owned by the API handler; when
//! the client disconnects the handler is dropped, which drops the upstream request and closes
//! its connection, and a drop guard records the call as `cancelled`.

mod attempts;
mod stream;

pub use stream::ChatStream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::access::{Access, RateInfo};
use crate::cache::{self, CacheKey, ResponseCache};
use crate::config::Reliability;
use crate::error::GatewayError;
use crate::model::{
    ChatCall, ChatOutput, EmbedCall, EmbedOutput, MAX_EMBED_INPUTS, MAX_FALLBACKS, TokenUsage,
};
use crate::provider::{Wire, mock};
use crate::registry::{ModelKind, Registry, Snapshot, Target};
use crate::reliability::{Breakers, Limits};
use crate::upstream;
use crate::usage::UsageSink;
use crate::usage::guard::{CallGuard, Tally};

/// A finished chat call.
#[derive(Debug, Clone)]
pub struct Completion {
    pub output: ChatOutput,
    /// `provider/model` that answered (a fallback, possibly).
    pub model: String,
    pub request_id: String,
    pub cost_usd: Option<f64>,
    pub mock: bool,
    /// `Some(true)`: answered from the cache; `Some(false)`: looked up and missed; `None`:
    /// not cacheable.
    pub cache: Option<bool>,
    /// The virtual key's limits after this call, for the `x-ratelimit-*` headers.
    pub rate: Option<RateInfo>,
}

#[derive(Debug, Clone)]
pub struct Embedding {
    pub output: EmbedOutput,
    pub model: String,
    pub cost_usd: Option<f64>,
    pub mock: bool,
    pub rate: Option<RateInfo>,
}

/// A model as `ListModels` and `/v1/models` show it.
#[derive(Debug, Clone)]
pub struct ModelListing {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub alias: Option<String>,
    pub kind: ModelKind,
    pub context_window: Option<i32>,
    pub function_calling: bool,
    pub vision: bool,
    pub available: bool,
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    http: Clients,
    registry: Arc<Registry>,
    breakers: Breakers,
    limits: Limits,
    usage: UsageSink,
    rel: Reliability,
    access: Access,
    cache: Arc<ResponseCache>,
}

/// The HTTP clients for upstream calls: pooled keep-alive connections, rustls, no redirects
/// (a provider API does not redirect, and a redirect must not carry a key elsewhere). `guarded`
/// resolves names through the outbound guard, for URLs an admin set; `direct` serves the
/// operator's and built-in URLs and local providers.
#[derive(Clone)]
pub struct Clients {
    direct: reqwest::Client,
    guarded: reqwest::Client,
}

impl Clients {
    pub fn new(
        rel: &Reliability,
        guard: &gathering_net::NetGuard,
    ) -> Result<Clients, reqwest::Error> {
        gathering_core::tls::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(rel.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(1024)
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("gathering-llm-gateway/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Clients {
            direct: builder().build()?,
            guarded: builder().dns_resolver(guard.resolver()).build()?,
        })
    }

    /// The client for calls to `ep`.
    pub fn for_endpoint(&self, ep: &crate::provider::Endpoint) -> &reqwest::Client {
        if ep.guarded {
            &self.guarded
        } else {
            &self.direct
        }
    }
}

impl Gateway {
    pub fn new(
        http: Clients,
        registry: Arc<Registry>,
        usage: UsageSink,
        rel: Reliability,
        access: Access,
        cache: Arc<ResponseCache>,
    ) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                http,
                registry,
                breakers: Breakers::new(rel.breaker_failures, rel.breaker_cooldown),
                limits: Limits::new(rel.max_concurrency, rel.queue_timeout),
                usage,
                rel,
                access,
                cache,
            }),
        }
    }

    /// Virtual keys, budgets and per-key limits.
    pub fn access(&self) -> &Access {
        &self.inner.access
    }

    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.inner.cache
    }

    /// Admits a chat call (key, models, budget, limits) and says whether the cache applies.
    async fn admit_chat(
        &self,
        call: &ChatCall,
        targets: &[Target],
    ) -> Result<(Option<RateInfo>, Option<CacheKey>), GatewayError> {
        let labels: Vec<&str> = targets.iter().map(|t| t.label.as_str()).collect();
        let rate = self
            .inner
            .access
            .admit(&call.principal, labels.iter().copied())
            .await?;
        let key = (self.inner.cache.enabled() && call.cache.applies(&call.request))
            .then(|| cache::key(&call.principal.cache_scope(), &labels, &call.request));
        Ok((rate, key))
    }

    /// Looks `key` up; a hit is recorded in usage (cached, at no cost).
    async fn cache_hit(
        &self,
        key: Option<&CacheKey>,
        call: &ChatCall,
        targets: &[Target],
        stream: bool,
    ) -> Option<cache::Hit> {
        let hit = self.inner.cache.get(key?).await?;
        let mut guard = self.guard("chat", call, stream);
        let target = targets.iter().find(|t| t.label == hit.model);
        if let Some(t) = target.or(targets.first()) {
            guard.target(t);
        }
        guard.complete_cached();
        Some(hit)
    }

    fn guard(&self, kind: &'static str, call: &ChatCall, stream: bool) -> CallGuard {
        CallGuard::new(
            &self.inner.usage,
            kind,
            &call.request_id,
            &call.caller,
            &call.principal,
            stream,
        )
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub fn breakers(&self) -> &Breakers {
        &self.inner.breakers
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn default_deadline(&self) -> Duration {
        self.inner.rel.default_deadline
    }

    /// The model and its fallbacks, all resolved before anything is sent: an unknown name is
    /// the caller's mistake and fails the call at once.
    fn resolve(&self, call: &ChatCall) -> Result<(Arc<Snapshot>, Vec<Target>), GatewayError> {
        if call.fallbacks.len() > MAX_FALLBACKS {
            return Err(GatewayError::InvalidRequest(format!(
                "at most {MAX_FALLBACKS} fallbacks"
            )));
        }
        let snapshot = self.inner.registry.snapshot();
        let mut targets = Vec::with_capacity(1 + call.fallbacks.len());
        for name in std::iter::once(&call.model).chain(call.fallbacks.iter()) {
            targets.push(snapshot.resolve(name)?);
        }
        Ok((snapshot, targets))
    }

    /// Checks that a call to `target` can be made at all.
    fn usable(target: &Target) -> Result<(), GatewayError> {
        let p = &target.provider;
        if let Some(reason) = &p.unsupported {
            return Err(GatewayError::NotConfigured(
                p.endpoint.provider.to_string(),
                reason.clone(),
            ));
        }
        if p.endpoint.key.is_none() && !p.endpoint.is_local && p.endpoint.wire != Wire::Mock {
            return Err(GatewayError::NotConfigured(
                p.endpoint.provider.to_string(),
                format!(
                    "no API key (set {}_API_KEY or store one through /settings)",
                    p.endpoint.provider.to_ascii_uppercase()
                ),
            ));
        }
        Ok(())
    }

    pub async fn complete(&self, call: ChatCall) -> Result<Completion, GatewayError> {
        call.request.validate()?;
        let (snapshot, targets) = self.resolve(&call)?;
        let (rate, cache_key) = self.admit_chat(&call, &targets).await?;
        if let Some(hit) = self
            .cache_hit(cache_key.as_ref(), &call, &targets, false)
            .await
        {
            return Ok(Completion {
                output: hit.output,
                model: hit.model,
                request_id: call.request_id,
                cost_usd: Some(0.0),
                mock: false,
                cache: Some(true),
                rate,
            });
        }
        let mut guard = self.guard("chat", &call, false);
        let tally = Tally::default();
        let (target, (output, upstream_latency)) =
            Self::first_answer(&targets, &mut guard, &tally, |t| {
                self.complete_on(t, &call, &snapshot, &tally)
            })
            .await?;
        let cost = target.cost(output.usage.input, output.usage.output);
        let mock = target.provider.endpoint.wire == Wire::Mock;
        guard.finish_ok(output.usage, cost, upstream_latency, &tally, mock);
        if let Some(key) = cache_key
            && !mock
        {
            self.inner.cache.put(key, &target.label, &output);
        }
        Ok(Completion {
            output,
            model: target.label.clone(),
            request_id: call.request_id,
            cost_usd: cost,
            mock,
            cache: cache_key.map(|_| false),
            rate,
        })
    }

    async fn complete_on(
        &self,
        target: &Target,
        call: &ChatCall,
        snapshot: &Snapshot,
        tally: &Tally,
    ) -> Result<(ChatOutput, Option<Duration>), GatewayError> {
        Self::usable(target)?;
        let ep = &target.provider.endpoint;
        if ep.wire == Wire::Mock {
            return Ok((mock::complete(&target.label, &call.request), None));
        }
        let body = Bytes::from(ep.chat_body(&target.model, &call.request, false)?);
        let url = ep.chat_url();
        let http = self.inner.http.for_endpoint(&target.provider.endpoint);
        let secrets = &snapshot.secrets;
        let (output, _permit, latency) = self
            .with_retries(
                target,
                call.deadline,
                tally,
                self.inner.rel.attempt_timeout,
                || {
                    let body = body.clone();
                    let url = &url;
                    async move {
                        let resp = upstream::post(http, ep, url, body, secrets).await?;
                        let raw = upstream::read_body(ep, resp, secrets).await?;
                        ep.parse_chat(&raw)
                    }
                },
            )
            .await?;
        Ok((output, Some(latency)))
    }

    pub async fn embed(&self, call: EmbedCall) -> Result<Embedding, GatewayError> {
        if call.inputs.is_empty() {
            return Err(GatewayError::InvalidRequest(
                "input must not be empty".into(),
            ));
        }
        if call.inputs.len() > MAX_EMBED_INPUTS {
            return Err(GatewayError::InvalidRequest(format!(
                "at most {MAX_EMBED_INPUTS} inputs"
            )));
        }
        let snapshot = self.inner.registry.snapshot();
        let target = snapshot.resolve(&call.model)?;
        let rate = self
            .inner
            .access
            .admit(&call.principal, [target.label.as_str()])
            .await?;
        let mut guard = CallGuard::new(
            &self.inner.usage,
            "embedding",
            &call.request_id,
            &call.caller,
            &call.principal,
            false,
        );
        let tally = Tally::default();
        let (_, (output, latency)) =
            Self::first_answer(std::slice::from_ref(&target), &mut guard, &tally, |t| {
                self.embed_on(t, &call, &snapshot, &tally)
            })
            .await?;
        let cost = target.cost(output.input_tokens, 0);
        let mock = target.provider.endpoint.wire == Wire::Mock;
        let usage = TokenUsage {
            input: output.input_tokens,
            output: 0,
        };
        guard.finish_ok(usage, cost, latency, &tally, mock);
        Ok(Embedding {
            output,
            model: target.label.clone(),
            cost_usd: cost,
            mock,
            rate,
        })
    }

    async fn embed_on(
        &self,
        target: &Target,
        call: &EmbedCall,
        snapshot: &Snapshot,
        tally: &Tally,
    ) -> Result<(EmbedOutput, Option<Duration>), GatewayError> {
        Self::usable(target)?;
        let ep = &target.provider.endpoint;
        if ep.wire == Wire::Mock {
            return Ok((mock::embed(&call.inputs), None));
        }
        let url = ep.embed_url()?;
        let body = Bytes::from(ep.embed_body(&target.model, &call.inputs));
        let http = self.inner.http.for_endpoint(&target.provider.endpoint);
        let secrets = &snapshot.secrets;
        let expected = call.inputs.len();
        let (output, _permit, latency) = self
            .with_retries(
                target,
                call.deadline,
                tally,
                self.inner.rel.attempt_timeout,
                || {
                    let body = body.clone();
                    let url = &url;
                    async move {
                        let resp = upstream::post(http, ep, url, body, secrets).await?;
                        let raw = upstream::read_body(ep, resp, secrets).await?;
                        ep.parse_embed(&raw, expected)
                    }
                },
            )
            .await?;
        Ok((output, Some(latency)))
    }

    /// Every model of the catalogue that is not deprecated, with whether it can be called now.
    pub fn list_models(&self) -> Vec<ModelListing> {
        let snapshot = self.inner.registry.snapshot();
        snapshot
            .models
            .iter()
            .filter(|m| !m.deprecated)
            .map(|m| ModelListing {
                id: format!("{}/{}", m.provider, m.name),
                provider: m.provider.to_string(),
                name: m.name.clone(),
                alias: m.alias.clone(),
                kind: m.kind,
                context_window: m.context_window,
                function_calling: m.function_calling,
                vision: m.vision,
                available: snapshot
                    .providers
                    .get(&*m.provider)
                    .is_some_and(|p| p.available()),
            })
            .collect()
    }
}
