//! Streamed chat answers: opening a stream goes through the same fallback and retry loops as
//! a plain call until the provider accepts the request; after that the stream is consumed as
//! the client reads it, and usage is recorded when it ends, fails or is dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::OwnedSemaphorePermit;

use super::Gateway;
use crate::access::RateInfo;
use crate::cache;
use crate::error::GatewayError;
use crate::model::{ChatCall, StreamEvent, TokenUsage};
use crate::provider::frame::Framer;
use crate::provider::{DecodeError, Decoder, Wire, mock};
use crate::registry::{Snapshot, Target};
use crate::upstream;
use crate::usage::guard::{CallGuard, Tally};

impl Gateway {
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
        let tally = Tally::default();
        let (target, opened) = Self::first_answer(&targets, &mut guard, &tally, |t| {
            self.open_stream(t, &call, &snapshot, &tally)
        })
        .await?;
        match opened {
            Opened::Mock(events) => {
                guard.attempts(&tally);
                let inner = MockStream {
                    events: events.into(),
                    guard: Some(guard),
                    cost: target.price.map(|_| 0.0),
                };
                Ok(ChatStream {
                    model: target.label.clone(),
                    request_id: call.request_id,
                    mock: true,
                    price: target.price,
                    cache: None,
                    rate,
                    inner: Box::pin(futures_util::stream::unfold(inner, MockStream::next)),
                })
            }
            Opened::Upstream(resp, permit) => {
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
                    inner =
                        cache::filling(inner, self.inner.cache.clone(), key, target.label.clone());
                }
                Ok(ChatStream {
                    model: target.label.clone(),
                    request_id: call.request_id,
                    mock: false,
                    price: target.price,
                    cache: cache_key.map(|_| false),
                    rate,
                    inner,
                })
            }
        }
    }

    async fn open_stream(
        &self,
        target: &Target,
        call: &ChatCall,
        snapshot: &Snapshot,
        tally: &Tally,
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
