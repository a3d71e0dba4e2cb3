//! One usage row per call, exactly once: when the call finishes, or — if it is dropped first
//! (the client went away) — as `cancelled`.
//!
//! A stream abandoned after the provider accepted it is charged an estimate (input ≈ prompt
//! characters / 4, output ≈ streamed characters / 4, at the model's prices): the provider bills
//! those tokens even though its final usage report never arrived, and a budget must not be
//! escapable by disconnecting just before the end.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{UsageRecord, UsageSink};
use crate::access::Principal;
use crate::error::GatewayError;
use crate::model::{Caller, ChatRequest, TokenUsage};
use crate::provider::Wire;
use crate::registry::Target;

/// Attempts made and models tried by a call. Atomic so that the attempt futures can share it
/// (`&Tally` is `Send`); a call's futures run one at a time, so `Relaxed` is enough.
#[derive(Default)]
pub struct Tally {
    pub attempts: AtomicU32,
    pub tried: AtomicU32,
}

/// What an abandoned stream had cost so far.
struct Estimate {
    price: Option<(f64, f64)>,
    prompt_chars: usize,
    streamed_chars: usize,
}

fn tokens_of(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

pub struct CallGuard {
    sink: UsageSink,
    record: Option<UsageRecord>,
    started: Instant,
    estimate: Option<Estimate>,
}

impl CallGuard {
    pub fn new(
        sink: &UsageSink,
        kind: &'static str,
        request_id: &str,
        caller: &Caller,
        principal: &Principal,
        stream: bool,
    ) -> CallGuard {
        let key = principal.key();
        CallGuard {
            sink: sink.clone(),
            started: Instant::now(),
            estimate: None,
            record: Some(UsageRecord {
                at: SystemTime::now(),
                request_id: request_id.to_owned(),
                kind,
                provider: String::new(),
                model: String::new(),
                caller: caller.clone(),
                status: "cancelled",
                error_kind: Some("cancelled"),
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: None,
                latency: Duration::ZERO,
                upstream_latency: None,
                attempts: 0,
                models_tried: 0,
                stream,
                mock: false,
                key_id: key.map(|k| k.id),
                team: key.and_then(|k| k.team.clone()),
                cached: false,
            }),
        }
    }

    pub fn target(&mut self, target: &Target) {
        if let Some(r) = &mut self.record {
            r.provider = target.provider.endpoint.provider.to_string();
            r.model = target.model.clone();
            r.mock = target.provider.endpoint.wire == Wire::Mock;
            r.models_tried += 1;
        }
    }

    pub fn attempts(&mut self, tally: &Tally) {
        if let Some(r) = &mut self.record {
            r.attempts = tally.attempts.load(Ordering::Relaxed);
            r.models_tried = tally.tried.load(Ordering::Relaxed);
        }
    }

    /// The provider accepted a stream of `request`: from now on an abandoned call is charged.
    pub fn stream_opened(&mut self, target: &Target, request: &ChatRequest) {
        let prompt_chars = request
            .messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.arguments.len())
                        .sum::<usize>()
            })
            .sum();
        self.estimate = Some(Estimate {
            price: target.price,
            prompt_chars,
            streamed_chars: 0,
        });
    }

    /// Text or tool calls of `chars` characters went to the client.
    pub fn streamed(&mut self, chars: usize) {
        if let Some(e) = &mut self.estimate {
            e.streamed_chars += chars;
        }
    }

    pub fn finish_ok(
        &mut self,
        usage: TokenUsage,
        cost: Option<f64>,
        upstream: Option<Duration>,
        tally: &Tally,
        mock: bool,
    ) {
        self.attempts(tally);
        self.complete(usage, cost, upstream, mock);
    }

    pub fn complete(
        &mut self,
        usage: TokenUsage,
        cost: Option<f64>,
        upstream: Option<Duration>,
        mock: bool,
    ) {
        if let Some(mut r) = self.record.take() {
            r.status = "ok";
            r.error_kind = None;
            r.input_tokens = usage.input;
            r.output_tokens = usage.output;
            r.cost_usd = cost;
            r.upstream_latency = upstream;
            r.mock = mock;
            r.latency = self.started.elapsed();
            metrics::counter!("llm_gateway_requests_total", "status" => "ok").increment(1);
            self.sink.record(r);
        }
    }

    /// Answered from the response cache: no tokens, no cost.
    pub fn complete_cached(&mut self) {
        if let Some(r) = &mut self.record {
            r.cached = true;
            r.attempts = 0;
        }
        self.complete(TokenUsage::default(), Some(0.0), None, false);
    }

    pub fn finish_err(&mut self, error: &GatewayError, tally: &Tally) {
        self.attempts(tally);
        self.fail(error);
    }

    pub fn fail(&mut self, error: &GatewayError) {
        if let Some(mut r) = self.record.take() {
            r.status = if matches!(error, GatewayError::Cancelled) {
                "cancelled"
            } else {
                "error"
            };
            r.error_kind = Some(error.kind());
            r.latency = self.started.elapsed();
            self.charge_estimate(&mut r);
            metrics::counter!("llm_gateway_requests_total", "status" => "error").increment(1);
            self.sink.record(r);
        }
    }

    fn charge_estimate(&self, r: &mut UsageRecord) {
        if let Some(e) = &self.estimate {
            r.input_tokens = tokens_of(e.prompt_chars);
            r.output_tokens = tokens_of(e.streamed_chars);
            r.cost_usd = e.price.map(|(pi, po)| {
                (f64::from(r.input_tokens) * pi + f64::from(r.output_tokens) * po) / 1_000_000.0
            });
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.latency = self.started.elapsed();
            self.charge_estimate(&mut r);
            metrics::counter!("llm_gateway_requests_total", "status" => "cancelled").increment(1);
            self.sink.record(r);
        }
    }
}
