//! The OpenAI-compatible HTTP API on the gateway's HTTP port, so that any OpenAI SDK can use
//! GatheRing's gateway: `POST /v1/chat/completions` (JSON or SSE), `POST /v1/embeddings`,
//! `GET /v1/models`. Errors use OpenAI's shape (`{"error": {message, type, param, code}}`).
//!
//! Extensions, all optional: `fallbacks: [..]` in the chat body; headers `x-request-id`,
//! `x-gathering-agent-id`, `x-gathering-service`, `x-gathering-timeout-ms`. Mock answers carry
//! `"mock": true`, `x-gathering-mock: true` and a `[mock]` prefix. When `LLM_GATEWAY_API_KEYS`
//! is set, `Authorization: Bearer <key>` is required.

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

/// Checks the gateway's own API key when keys are configured (constant time).
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), GatewayError> {
    if state.api_keys.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let mut ok = false;
    for key in state.api_keys.iter() {
        ok |= gathering_core::secret::constant_time_eq(given.as_bytes(), key.expose().as_bytes());
    }
    if ok {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized)
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
