//! Errors: start-up failures, and API errors mapped to the contract's response shapes in one
//! place (`{"detail": "..."}`, 422 `{"detail": [{loc, msg, type}]}`), so handlers only say what
//! went wrong. A 500 never carries internals: the cause is logged with the request id.

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] gathering_core::ConfigError),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("edge task failed: {0}")]
    Task(String),
}

/// One field's validation failure, as FastAPI reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<gathering_db::DbError> for ApiError {
    fn from(e: gathering_db::DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<gathering_db::tokio_postgres::Error> for ApiError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<gathering_db::PoolError> for ApiError {
    fn from(e: gathering_db::PoolError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::Validation(errors) => {
                HttpResponse::build(status).json(json!({ "detail": errors }))
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                HttpResponse::build(status).json(json!({ "detail": "Internal server error" }))
            }
            ApiError::Unauthorized(detail) => HttpResponse::build(status)
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(json!({ "detail": detail })),
            other => HttpResponse::build(status).json(json!({ "detail": other.to_string() })),
        }
    }
}
