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
    json!({"error": {
        "message": message,
        "type": error_type(status),
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
        if let Some(after) = self.error.retry_after()
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert("retry-after", v);
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
