//! One HTTP exchange with a provider: the request with its authentication headers, and the
//! classification of what came back — 2xx, or a typed error (429 with its `Retry-After`,
//! 5xx, refused key, bad request) whose message is the provider's own, redacted.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use crate::error::GatewayError;
use crate::provider::{Endpoint, Wire, anthropic};
use crate::redact::redact;

/// Largest response body read.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest error body read (it only feeds a message).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sends a JSON POST; returns the response when its status is 2xx.
pub async fn post(
    client: &reqwest::Client,
    ep: &Endpoint,
    url: &str,
    body: Bytes,
    secrets: &[String],
) -> Result<reqwest::Response, GatewayError> {
    let mut req = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body);
    match ep.wire {
        Wire::Anthropic => {
            if let Some(key) = &ep.key {
                let mut v = HeaderValue::from_str(key.expose()).map_err(|_| {
                    GatewayError::NotConfigured(
                        ep.provider.to_string(),
                        "the API key contains characters not allowed in a header".into(),
                    )
                })?;
                v.set_sensitive(true);
                req = req.header("x-api-key", v);
            }
            req = req.header("anthropic-version", anthropic::API_VERSION);
        }
        Wire::OpenAi | Wire::Ollama | Wire::Mock => {
            if let Some(key) = &ep.key {
                req = req.bearer_auth(key.expose());
            }
        }
    }
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(ep, &e, secrets))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(status_error(ep, resp, secrets).await)
}

/// Reads a whole (bounded) response body.
pub async fn read_body(
    ep: &Endpoint,
    mut resp: reqwest::Response,
    secrets: &[String],
) -> Result<Vec<u8>, GatewayError> {
    let mut out = Vec::with_capacity(resp.content_length().map_or(4096, |n| {
        usize::try_from(n).unwrap_or(MAX_BODY).min(MAX_BODY)
    }));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(ep, &e, secrets))?
    {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ep.malformed(format!("response larger than {MAX_BODY} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

pub fn transport_error(ep: &Endpoint, e: &reqwest::Error, secrets: &[String]) -> GatewayError {
    if e.is_timeout() {
        return GatewayError::Timeout(ep.provider.to_string());
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    GatewayError::Connect {
        provider: ep.provider.to_string(),
        message: redact(&message, secrets),
    }
}

/// `Retry-After` in seconds (or `retry-after-ms`, which OpenAI sends); HTTP dates are not
/// worth a dependency and fall back to back-off.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let parse = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    parse("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0))
        .or_else(|| parse("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0))))
}

async fn status_error(
    ep: &Endpoint,
    mut resp: reqwest::Response,
    secrets: &[String],
) -> GatewayError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let mut raw = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            raw.extend_from_slice(&chunk);
            if raw.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let message = redact(&error_message(&raw), secrets);
    let provider = ep.provider.to_string();
    match status {
        400 | 413 | 422 => GatewayError::InvalidRequest(format!("{provider}: {message}")),
        401 | 403 => GatewayError::UpstreamAuth {
            provider,
            status,
            message,
        },
        429 => GatewayError::RateLimited {
            provider,
            retry_after,
            message,
        },
        _ => GatewayError::Upstream {
            provider,
            status,
            message,
            retry_after,
        },
    }
}

/// The human part of a provider's error body (`error.message`, `error`, or the text).
fn error_message(raw: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(raw) {
        let found = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str);
        if let Some(m) = found {
            return m.to_owned();
        }
    }
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        "no details".into()
    } else {
        text.into_owned()
    }
}
