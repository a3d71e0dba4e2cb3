//! The OpenAI-compatible HTTP API on the gateway's HTTP port, so that any OpenAI SDK can use
//! GatheRing's gateway: `POST /v1/chat/completions` (JSON or SSE), `POST /v1/embeddings`,
//! `GET /v1/models`. Errors use OpenAI's shape (`{"error": {message, type, param, code}}`).
//!
//! Extensions, all optional: `fallbacks: [..]` in the chat body; headers `x-request-id`,
//! `x-gathering-agent-id`, `x-gathering-service`, `x-gathering-timeout-ms`; `"cache": true |
//! false` in the chat body (see [`crate::cache`]). Mock answers carry `"mock": true`,
//! `x-gathering-mock: true` and a `[mock]` prefix; cached answers `"cached": true` and
//! `x-gathering-cache: hit`.
//!
//! **Keys.** `Authorization: Bearer <key>` with a virtual key (`sk-gth-…`, see
//! [`crate::access`]) makes the call on that key's authority: its models, budget and limits
//! apply, and answers carry OpenAI's `x-ratelimit-*` headers. With an operator key
//! (`LLM_GATEWAY_API_KEYS`) the call is unrestricted. When no operator key is configured the
//! API is open (development, or a loopback address): calls without a key are unrestricted, but
//! a revoked or unknown virtual key is still refused, so revocation is visible everywhere.

mod chat;
mod embeddings;
mod errors;
mod models;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use gathering_core::Secret;
use tokio::time::Instant;

use crate::access::keys::KEY_PREFIX;
use crate::access::{Principal, RateInfo};
use crate::engine::Gateway;
use crate::error::GatewayError;
use crate::model::Caller;

pub use errors::ApiError;

#[derive(Clone)]
pub struct ApiState {
    pub gateway: Gateway,
    pub api_keys: Arc<Vec<Secret>>,
}

pub fn router(state: ApiState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/models", get(models::handle))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Who is calling: a live virtual key, or a trusted caller (an operator key, compared in
/// constant time, or anyone when no operator key is configured).
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<Principal, GatewayError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let virtual_key = given.starts_with(KEY_PREFIX);
    if virtual_key && let Some(key) = state.gateway.access().keys.find(given) {
        if key.expired(std::time::SystemTime::now()) {
            return Err(GatewayError::KeyExpired);
        }
        return Ok(Principal::Key(key));
    }
    if state.api_keys.is_empty() {
        return if virtual_key {
            Err(GatewayError::Unauthorized)
        } else {
            Ok(Principal::Trusted)
        };
    }
    let mut ok = false;
    for key in state.api_keys.iter() {
        ok |= gathering_core::secret::constant_time_eq(given.as_bytes(), key.expose().as_bytes());
    }
    if ok {
        Ok(Principal::Trusted)
    } else {
        Err(GatewayError::Unauthorized)
    }
}

/// A reset time as OpenAI writes it (`"250ms"`, `"12.5s"`, `"1m0s"`).
fn reset_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

/// OpenAI's rate-limit headers for a key's limits.
fn rate_headers(headers: &mut HeaderMap, rate: Option<&RateInfo>) {
    let Some(rate) = rate else {
        return;
    };
    for (what, quota) in [("requests", rate.requests), ("tokens", rate.tokens)] {
        let Some(q) = quota else {
            continue;
        };
        for (name, value) in [
            ("limit", q.limit.to_string()),
            ("remaining", q.remaining.to_string()),
            ("reset", reset_text(q.reset)),
        ] {
            if let (Ok(n), Ok(v)) = (
                axum::http::HeaderName::try_from(format!("x-ratelimit-{name}-{what}")),
                axum::http::HeaderValue::try_from(value),
            ) {
                headers.insert(n, v);
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Who is calling, from the extension headers and the OpenAI `user` field.
fn caller(headers: &HeaderMap, user: Option<String>) -> Result<Caller, GatewayError> {
    let agent_id = match header(headers, "x-gathering-agent-id") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            GatewayError::InvalidRequest("x-gathering-agent-id must be an integer".into())
        })?),
    };
    let short = |s: &str| crate::model::truncate(s, 128);
    Ok(Caller {
        service: Some(header(headers, "x-gathering-service").map_or_else(|| "http".into(), short)),
        agent_id,
        user_id: user.filter(|u| !u.is_empty()).map(|u| short(&u)),
    })
}

fn deadline(state: &ApiState, headers: &HeaderMap) -> Result<Instant, GatewayError> {
    let timeout = match header(headers, "x-gathering-timeout-ms") {
        None => state.gateway.default_deadline(),
        Some(v) => {
            let ms: u64 = v.parse().map_err(|_| {
                GatewayError::InvalidRequest("x-gathering-timeout-ms must be an integer".into())
            })?;
            if ms == 0 {
                state.gateway.default_deadline()
            } else {
                Duration::from_millis(ms.min(3_600_000))
            }
        }
    };
    Ok(Instant::now() + timeout)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
