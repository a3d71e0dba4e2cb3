//! Errors in OpenAI's shape, with the gateway's status for each failure.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::GatewayError;

/// A failed API call; carries the request id so the client can quote it.
pub struct ApiError {
    pub error: GatewayError,
    pub request_id: Option<String>,
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        ApiError {
            error,
            request_id: None,
        }
    }
}

/// OpenAI's `type` for a status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// The JSON body of an error (also sent as the last event of a failed stream).
pub fn body(error: &GatewayError) -> serde_json::Value {
    let status = error.http_status();
    let message = match error {
        // Internals stay in the logs.
        GatewayError::Internal(_) => "internal error".to_owned(),
        other => other.to_string(),
    };
    let kind = match error {
        // OpenAI's type for a spent quota; SDKs do not retry it (see `x-should-retry`).
        GatewayError::BudgetExceeded(_) => "insufficient_quota",
        _ => error_type(status),
    };
    json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": error.kind(),
    }})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error.http_status();
        if let GatewayError::Internal(cause) = &self.error {
            tracing::error!(%cause, request_id = ?self.request_id, "internal error");
        }
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(body(&self.error)),
        )
            .into_response();
        if let Some(after) = self.error.retry_after() {
            let h = response.headers_mut();
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert("retry-after", v);
            }
            if let Ok(v) = HeaderValue::from_str(&after.as_millis().max(1).to_string()) {
                h.insert("retry-after-ms", v);
            }
        }
        match &self.error {
            GatewayError::KeyRateLimited { info, .. } => {
                super::rate_headers(response.headers_mut(), Some(info));
            }
            GatewayError::BudgetExceeded(_) => {
                // Retrying cannot help until the period ends or an admin raises the budget.
                response
                    .headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
            }
            _ => {}
        }
        if let Some(id) = self
            .request_id
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            response.headers_mut().insert("x-request-id", id);
        }
        response
    }
}
