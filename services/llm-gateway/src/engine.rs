//! The gateway's core, shared by the gRPC and HTTP APIs: resolve the model and its fallbacks,
//! then for each in order — circuit breaker, concurrency slot, attempts with retries
//! (back-off with jitter, `Retry-After` honoured, never on a 4xx other than 429) — and record
//! usage once the call is over, whatever its outcome.
//!
//! Cancellation is structural: a call is a future (or a stream) owned by the API handler; when
//! the client disconnects the handler is dropped, which drops the upstream request and closes
//! its connection, and a drop guard records the call as `cancelled`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::access::{Access, RateInfo};
use crate::cache::{self, CacheKey, ResponseCache};
use crate::config::Reliability;
use crate::error::GatewayError;
use crate::model::{
    ChatCall, ChatOutput, EmbedCall, EmbedOutput, MAX_EMBED_INPUTS, MAX_FALLBACKS, StreamEvent,
    TokenUsage,
};
use crate::provider::frame::Framer;
use crate::provider::{DecodeError, Decoder, Wire, mock};
use crate::registry::{ModelKind, Registry, Snapshot, Target};
use crate::reliability::{Breakers, Limits, backoff};
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
        let mut tally = Tally::default();
        let mut last = GatewayError::Internal("no model to try".into());
        for target in &targets {
            tally.tried += 1;
            guard.target(target);
            match self.complete_on(target, &call, &snapshot, &mut tally).await {
                Ok((output, upstream_latency)) => {
                    let cost = target.cost(output.usage.input, output.usage.output);
                    let mock = target.provider.endpoint.wire == Wire::Mock;
                    guard.finish_ok(output.usage, cost, upstream_latency, &tally, mock);
                    if let Some(key) = cache_key
                        && !mock
                    {
                        self.inner.cache.put(key, &target.label, &output);
                    }
                    return Ok(Completion {
                        output,
                        model: target.label.clone(),
                        request_id: call.request_id,
                        cost_usd: cost,
                        mock,
                        cache: cache_key.map(|_| false),
                        rate,
                    });
                }
                Err(e) => {
                    let go_on = e.allows_fallback();
                    if go_on && tally.tried < targets.len() as u32 {
                        tracing::info!(model = %target.label, error = %e, "falling back to the next model");
                    }
                    last = e;
                    if !go_on {
                        break;
                    }
                }
            }
        }
        guard.finish_err(&last, &tally);
        Err(last)
    }

    async fn complete_on(
        &self,
        target: &Target,
        call: &ChatCall,
        snapshot: &Snapshot,
        tally: &mut Tally,
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

    /// Runs `attempt` until it succeeds, a non-retryable error occurs, the retries are spent
    /// or the deadline would pass. Each attempt holds a concurrency slot (released while
    /// waiting to retry) and reports to the circuit breaker.
    async fn with_retries<T, F, Fut>(
        &self,
        target: &Target,
        deadline: Instant,
        tally: &mut Tally,
        per_attempt: Duration,
        mut attempt: F,
    ) -> Result<(T, OwnedSemaphorePermit, Duration), GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let rel = &self.inner.rel;
        let label = target.label.as_str();
        let provider = &*target.provider.endpoint.provider;
        let mut retry = 0u32;
        loop {
            self.inner.breakers.admit(label)?;
            let permit = self.inner.limits.acquire(provider, deadline).await?;
            let now = Instant::now();
            if now >= deadline {
                return Err(GatewayError::Timeout(label.to_owned()));
            }
            tally.attempts += 1;
            let started = Instant::now();
            let result =
                match tokio::time::timeout(per_attempt.min(deadline - now), attempt()).await {
                    Ok(r) => r,
                    Err(_) => Err(GatewayError::Timeout(label.to_owned())),
                };
            let error = match result {
                Ok(value) => {
                    self.inner.breakers.success(label);
                    return Ok((value, permit, started.elapsed()));
                }
                Err(e) => e,
            };
            drop(permit);
            if error.counts_for_breaker() {
                self.inner.breakers.failure(label);
            }
            if !error.retryable() || retry >= rel.max_retries {
                return Err(error);
            }
            let wait = match error.retry_after() {
                Some(after) if after > rel.max_retry_after => return Err(error),
                Some(after) => after,
                None => backoff::delay(retry, rel.retry_base, rel.retry_max),
            };
            if Instant::now() + wait >= deadline {
                return Err(error);
            }
            tracing::debug!(model = label, error = %error, wait_ms = wait.as_millis() as u64, "retrying");
            metrics::counter!("llm_gateway_retries_total").increment(1);
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// Opens a stream: retries and fallbacks apply until the provider has accepted the
    /// request (status 2xx); after the first byte, an error ends the stream.
    pub async fn stream(&self, call: ChatCall) -> Result<ChatStream, GatewayError> {
        call.request.validate()?;
        let (snapshot, targets) = self.resolve(&call)?;
        let (rate, cache_key) = self.admit_chat(&call, &targets).await?;
        if let Some(hit) = self
            .cache_hit(cache_key.as_ref(), &call, &targets, true)
            .await
        {
            let events = cache::replay(&hit.output);
            return Ok(ChatStream {
                model: hit.model,
                request_id: call.request_id,
                mock: false,
                price: None,
                cache: Some(true),
                rate,
                inner: Box::pin(futures_util::stream::iter(events.into_iter().map(Ok))),
            });
        }
        let mut guard = self.guard("chat", &call, true);
        let mut tally = Tally::default();
        let mut last = GatewayError::Internal("no model to try".into());
        for target in &targets {
            tally.tried += 1;
            guard.target(target);
            match self.open_stream(target, &call, &snapshot, &mut tally).await {
                Ok(Opened::Mock(events)) => {
                    guard.attempts(&tally);
                    let inner = MockStream {
                        events: events.into(),
                        guard: Some(guard),
                        cost: target.price.map(|_| 0.0),
                    };
                    return Ok(ChatStream {
                        model: target.label.clone(),
                        request_id: call.request_id,
                        mock: true,
                        price: target.price,
                        cache: None,
                        rate,
                        inner: Box::pin(futures_util::stream::unfold(inner, MockStream::next)),
                    });
                }
                Ok(Opened::Upstream(resp, permit)) => {
                    guard.attempts(&tally);
                    guard.stream_opened(target, &call.request);
                    let ep = &target.provider.endpoint;
                    let state = UpstreamStream {
                        resp,
                        framer: Framer::default(),
                        decoder: ep.decoder(),
                        pending: VecDeque::new(),
                        done: false,
                        idle: self.inner.rel.stream_idle_timeout,
                        guard: Some(guard),
                        gateway: self.clone(),
                        target: target.clone(),
                        secrets: snapshot.secrets.clone(),
                        _permit: permit,
                    };
                    let mut inner: cache::EventStream =
                        Box::pin(futures_util::stream::unfold(state, UpstreamStream::next));
                    if let Some(key) = cache_key {
                        inner = cache::filling(
                            inner,
                            self.inner.cache.clone(),
                            key,
                            target.label.clone(),
                        );
                    }
                    return Ok(ChatStream {
                        model: target.label.clone(),
                        request_id: call.request_id,
                        mock: false,
                        price: target.price,
                        cache: cache_key.map(|_| false),
                        rate,
                        inner,
                    });
                }
                Err(e) => {
                    let go_on = e.allows_fallback();
                    last = e;
                    if !go_on {
                        break;
                    }
                }
            }
        }
        guard.finish_err(&last, &tally);
        Err(last)
    }

    async fn open_stream(
        &self,
        target: &Target,
        call: &ChatCall,
        snapshot: &Snapshot,
        tally: &mut Tally,
    ) -> Result<Opened, GatewayError> {
        Self::usable(target)?;
        let ep = &target.provider.endpoint;
        if ep.wire == Wire::Mock {
            return Ok(Opened::Mock(mock::stream(&target.label, &call.request)));
        }
        let body = Bytes::from(ep.chat_body(&target.model, &call.request, true)?);
        let url = ep.chat_url();
        let http = self.inner.http.for_endpoint(&target.provider.endpoint);
        let secrets = &snapshot.secrets;
        let first_byte = self
            .inner
            .rel
            .stream_idle_timeout
            .min(self.inner.rel.attempt_timeout);
        let (resp, permit, _) = self
            .with_retries(target, call.deadline, tally, first_byte, || {
                let body = body.clone();
                let url = &url;
                async move { upstream::post(http, ep, url, body, secrets).await }
            })
            .await?;
        Ok(Opened::Upstream(resp, permit))
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
        guard.target(&target);
        let mut tally = Tally {
            attempts: 0,
            tried: 1,
        };
        let result = self.embed_on(&target, &call, &snapshot, &mut tally).await;
        match result {
            Ok((output, latency)) => {
                let cost = target.cost(output.input_tokens, 0);
                let mock = target.provider.endpoint.wire == Wire::Mock;
                guard.finish_ok(
                    TokenUsage {
                        input: output.input_tokens,
                        output: 0,
                    },
                    cost,
                    latency,
                    &tally,
                    mock,
                );
                Ok(Embedding {
                    output,
                    model: target.label.clone(),
                    cost_usd: cost,
                    mock,
                    rate,
                })
            }
            Err(e) => {
                guard.finish_err(&e, &tally);
                Err(e)
            }
        }
    }

    async fn embed_on(
        &self,
        target: &Target,
        call: &EmbedCall,
        snapshot: &Snapshot,
        tally: &mut Tally,
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

enum Opened {
    Mock(Vec<StreamEvent>),
    Upstream(reqwest::Response, OwnedSemaphorePermit),
}

/// A streamed answer. Dropping it (the client went away) drops the upstream response, which
/// closes the upstream connection, and records the call as cancelled.
pub struct ChatStream {
    pub model: String,
    pub request_id: String,
    pub mock: bool,
    /// USD per million input and output tokens, when the catalogue knows them (`None` for a
    /// cached answer, which costs nothing).
    pub price: Option<(f64, f64)>,
    /// As [`Completion::cache`].
    pub cache: Option<bool>,
    pub rate: Option<RateInfo>,
    inner: Pin<Box<dyn Stream<Item = Result<StreamEvent, GatewayError>> + Send>>,
}

impl ChatStream {
    pub fn cost(&self, usage: TokenUsage) -> Option<f64> {
        self.price.map(|(pi, po)| {
            (f64::from(usage.input) * pi + f64::from(usage.output) * po) / 1_000_000.0
        })
    }
}

impl Stream for ChatStream {
    type Item = Result<StreamEvent, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct MockStream {
    events: VecDeque<StreamEvent>,
    guard: Option<CallGuard>,
    cost: Option<f64>,
}

impl MockStream {
    async fn next(mut self) -> Option<(Result<StreamEvent, GatewayError>, Self)> {
        let event = self.events.pop_front()?;
        if let StreamEvent::Finish { usage, .. } = &event
            && let Some(mut g) = self.guard.take()
        {
            g.complete(*usage, self.cost, None, true);
        }
        Some((Ok(event), self))
    }
}

struct UpstreamStream {
    resp: reqwest::Response,
    framer: Framer,
    decoder: Decoder,
    pending: VecDeque<StreamEvent>,
    done: bool,
    idle: Duration,
    guard: Option<CallGuard>,
    gateway: Gateway,
    target: Target,
    secrets: Vec<String>,
    _permit: OwnedSemaphorePermit,
}

impl UpstreamStream {
    async fn next(mut self) -> Option<(Result<StreamEvent, GatewayError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                match &event {
                    StreamEvent::Finish { usage, .. } => {
                        let cost = self.target.cost(usage.input, usage.output);
                        if let Some(mut g) = self.guard.take() {
                            g.complete(*usage, cost, None, false);
                        }
                    }
                    StreamEvent::Text(t) => {
                        if let Some(g) = self.guard.as_mut() {
                            g.streamed(t.len());
                        }
                    }
                    StreamEvent::ToolCalls(calls) => {
                        if let Some(g) = self.guard.as_mut() {
                            g.streamed(
                                calls.iter().map(|c| c.name.len() + c.arguments.len()).sum(),
                            );
                        }
                    }
                }
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle, self.resp.chunk()).await {
                Err(_) => Err(GatewayError::Timeout(self.target.label.clone())),
                Ok(Err(e)) => Err(upstream::transport_error(
                    &self.target.provider.endpoint,
                    &e,
                    &self.secrets,
                )),
                Ok(Ok(chunk)) => Ok(chunk),
            };
            let sse = self.decoder.is_sse();
            let Self {
                framer,
                decoder,
                pending,
                target,
                secrets,
                ..
            } = &mut self;
            let ep = &target.provider.endpoint;
            let secrets: &[String] = secrets;
            let fed = match chunk {
                Err(e) => Err(e),
                Ok(Some(bytes)) => framer
                    .push(
                        &bytes,
                        sse,
                        |data| decoder.feed(data, pending),
                        || DecodeError::Malformed("stream frame too long".into()),
                    )
                    .map_err(|e| decode_error(ep, e, secrets)),
                Ok(None) => framer
                    .finish(sse, |data| decoder.feed(data, pending))
                    .and_then(|done| if done { Ok(true) } else { decoder.end(pending) })
                    .map_err(|e| decode_error(ep, e, secrets)),
            };
            match fed {
                Ok(true) => {
                    self.done = true;
                    self.gateway.inner.breakers.success(&self.target.label);
                }
                Ok(false) => {}
                Err(e) => {
                    self.done = true;
                    self.pending.clear();
                    if e.counts_for_breaker() {
                        self.gateway.inner.breakers.failure(&self.target.label);
                    }
                    if let Some(g) = self.guard.as_mut() {
                        g.fail(&e);
                    }
                    self.guard = None;
                    return Some((Err(e), self));
                }
            }
        }
    }
}

fn decode_error(
    ep: &crate::provider::Endpoint,
    e: DecodeError,
    secrets: &[String],
) -> GatewayError {
    match e {
        DecodeError::Malformed(m) => ep.malformed(m),
        DecodeError::Provider { status, message } => GatewayError::Upstream {
            provider: ep.provider.to_string(),
            status,
            message: crate::redact::redact(&message, secrets),
            retry_after: None,
        },
    }
}
