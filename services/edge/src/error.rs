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
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("edge task failed: {0}")]
    Task(String),
    #[error("edge task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One field's validation failure, as FastAPI reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self::at("body", field, msg)
    }

    pub fn query(field: &str, msg: impl Into<String>) -> Self {
        Self::at("query", field, msg)
    }

    pub fn at(place: &str, field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec![place.into(), field.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
}

/// Collects field errors; `finish` is `Ok` when there were none.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, field: &str, msg: &str) -> &mut Self {
        if !ok {
            self.0.push(FieldError::body(field, msg));
        }
        self
    }

    pub fn push(&mut self, e: FieldError) -> &mut Self {
        self.0.push(e);
        self
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(std::mem::take(&mut self.0)))
        }
    }
}

/// Body, form, query and path extraction failures in the contract's 422 shape.
pub fn extractor_error(place: &'static str) -> impl Fn(String) -> actix_web::Error + Clone {
    move |msg: String| {
        ApiError::Validation(vec![FieldError {
            loc: vec![place.into()],
            msg,
            kind: "value_error".into(),
        }])
        .into()
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
    /// Too many failed attempts: 429 with `Retry-After`.
    #[error("{detail}")]
    Locked { detail: String, retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// An upstream the edge depends on (a model provider) failed.
    #[error("{0}")]
    BadGateway(String),
    /// The request took longer than its limit (408), e.g. workspace code execution.
    #[error("{0}")]
    Timeout(String),
    /// An operation the client asked for ran and failed for a reason the client may read
    /// (a git push rejected by the remote): 500 with that reason, unlike `Internal`.
    #[error("{0}")]
    Failed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// An unexpected failure of a domain crate (its error keeps the database error as a
    /// source): a 500, unless the database refused a NUL character of the client's input (400).
    pub fn unexpected(e: &(dyn std::error::Error + 'static)) -> Self {
        if nul_refused(e) {
            ApiError::BadRequest(NUL_REFUSED.into())
        } else {
            ApiError::Internal(with_causes(e))
        }
    }
}

/// Whether a JSON value holds a NUL character anywhere (keys included), which PostgreSQL
/// cannot store: for handlers whose domain crate keeps database errors only as text, so that
/// such input is refused before it reaches the database.
pub fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The answer when PostgreSQL refused a NUL character (`\0`, `\u0000` in JSON): text and
/// JSONB columns cannot hold one. It can only come from the client's input, so it is a 400
/// wherever the query that met it was made, not a 500.
const NUL_REFUSED: &str = "Text must not contain the NUL character (\\u0000)";

/// Whether `e` (or one of its causes) is PostgreSQL refusing a NUL character: 22021
/// `character_not_in_repertoire` (text; Rust strings are valid UTF-8, so NUL is the only
/// character it can refuse) or 22P05 `untranslatable_character` (`\u0000` in JSONB).
fn nul_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    use gathering_db::tokio_postgres::error::SqlState;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(pg) = c.downcast_ref::<gathering_db::tokio_postgres::Error>()
            && pg.code().is_some_and(|code| {
                *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                    || *code == SqlState::UNTRANSLATABLE_CHARACTER
            })
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// An error with its causes, for the log: tokio-postgres keeps what went wrong (a server
/// error's message, "a Postgres value was `NULL`", the mismatched types) in `source()`, not in
/// its own text ("error deserializing column 3").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<gathering_db::DbError> for ApiError {
    fn from(e: gathering_db::DbError) -> Self {
        if nul_refused(&e) {
            return ApiError::BadRequest(NUL_REFUSED.into());
        }
        ApiError::Internal(with_causes(&e))
    }
}

impl From<gathering_db::tokio_postgres::Error> for ApiError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        if nul_refused(&e) {
            return ApiError::BadRequest(NUL_REFUSED.into());
        }
        ApiError::Internal(with_causes(&e))
    }
}

impl From<gathering_db::PoolError> for ApiError {
    fn from(e: gathering_db::PoolError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// gRPC failures of the other services, as API errors. Messages of 4xx statuses are the
/// service's own wording (written for clients); internal ones are not passed on.
impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let msg = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange => ApiError::BadRequest(msg),
            Code::Unauthenticated => ApiError::Unauthorized(msg),
            Code::PermissionDenied => ApiError::Forbidden(msg),
            Code::NotFound => ApiError::NotFound(msg),
            Code::ResourceExhausted => {
                let retry_after = s
                    .metadata()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60);
                ApiError::Locked {
                    detail: msg,
                    retry_after,
                }
            }
            Code::Unavailable | Code::DeadlineExceeded => {
                tracing::warn!(status = %s, "upstream service unavailable");
                ApiError::Unavailable("Service temporarily unavailable".into())
            }
            _ => ApiError::Internal(format!("upstream: {s}")),
        }
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
            ApiError::TooManyRequests(_) | ApiError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Failed(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            ApiError::Locked {
                detail,
                retry_after,
            } => HttpResponse::build(status)
                .insert_header(("Retry-After", retry_after.to_string()))
                .json(json!({ "detail": detail })),
            other => HttpResponse::build(status).json(json!({ "detail": other.to_string() })),
        }
    }
}
