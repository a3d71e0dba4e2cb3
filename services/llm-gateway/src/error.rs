//! Errors: start-up failures ([`Error`]) and the typed failures of a call ([`GatewayError`]),
//! which decide retries, fallbacks and the circuit breaker, and map to one HTTP status and one
//! gRPC code each. Messages never contain a provider key: upstream bodies are redacted before
//! they become an error.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] gathering_core::ConfigError),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    #[error("gateway task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The caller's request is wrong (ours or the provider's 400/422).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// The provider has no key, or is not available here (mock disabled, unsupported API).
    #[error("provider '{0}' is not configured: {1}")]
    NotConfigured(String, String),
    /// The gateway's own API key is missing or wrong (or a virtual key was revoked).
    #[error("missing or invalid gateway API key")]
    Unauthorized,
    /// A virtual key past its expiry.
    #[error("this gateway key has expired")]
    KeyExpired,
    /// The virtual key may not call this model.
    #[error("this gateway key may not use model '{0}'")]
    ModelNotAllowed(String),
    /// The key's or its team's budget is spent (no provider was called).
    #[error("{0}")]
    BudgetExceeded(String),
    /// The key's per-minute limit is reached (no provider was called).
    #[error("{message}")]
    KeyRateLimited {
        message: String,
        retry_after: Duration,
        info: crate::access::RateInfo,
    },
    #[error("{provider} refused the key ({status}): {message}")]
    UpstreamAuth {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} rate limit (429): {message}")]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{provider} failed ({status}): {message}")]
    Upstream {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("cannot reach {provider}: {message}")]
    Connect { provider: String, message: String },
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("{provider} sent a malformed response: {message}")]
    Malformed { provider: String, message: String },
    #[error("circuit open for {0}: recent calls failed, retry later")]
    CircuitOpen(String),
    #[error("too many concurrent requests to {0}")]
    Overloaded(String),
    #[error("the caller went away")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// Worth another attempt at the same model (connection errors, timeouts, 429, 5xx).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::RateLimited { .. }
                | GatewayError::Upstream { .. }
                | GatewayError::Connect { .. }
                | GatewayError::Timeout(_)
        ) && !matches!(self, GatewayError::Upstream { status, .. } if *status < 500 && *status != 408)
    }

    /// Worth trying the next model: anything but a request that is wrong in itself.
    pub fn allows_fallback(&self) -> bool {
        !matches!(
            self,
            GatewayError::InvalidRequest(_)
                | GatewayError::UnknownModel(_)
                | GatewayError::Unauthorized
                | GatewayError::KeyExpired
                | GatewayError::ModelNotAllowed(_)
                | GatewayError::BudgetExceeded(_)
                | GatewayError::KeyRateLimited { .. }
                | GatewayError::Cancelled
        )
    }

    /// Counts against the provider+model circuit (its health, not the caller's mistakes).
    pub fn counts_for_breaker(&self) -> bool {
        matches!(
            self,
            GatewayError::Connect { .. }
                | GatewayError::Timeout(_)
                | GatewayError::Malformed { .. }
        ) || matches!(self, GatewayError::Upstream { status, .. } if *status >= 500)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::RateLimited { retry_after, .. }
            | GatewayError::Upstream { retry_after, .. } => *retry_after,
            GatewayError::KeyRateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// A stable name, for usage rows and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::UnknownModel(_) => "unknown_model",
            GatewayError::NotConfigured(..) => "not_configured",
            GatewayError::Unauthorized => "unauthorized",
            GatewayError::KeyExpired => "key_expired",
            GatewayError::ModelNotAllowed(_) => "model_not_allowed",
            GatewayError::BudgetExceeded(_) => "budget_exceeded",
            GatewayError::KeyRateLimited { .. } => "rate_limit_exceeded",
            GatewayError::UpstreamAuth { .. } => "upstream_auth",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::Upstream { .. } => "upstream_error",
            GatewayError::Connect { .. } => "connect_error",
            GatewayError::Timeout(_) => "timeout",
            GatewayError::Malformed { .. } => "malformed_response",
            GatewayError::CircuitOpen(_) => "circuit_open",
            GatewayError::Overloaded(_) => "overloaded",
            GatewayError::Cancelled => "cancelled",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// The HTTP status of the OpenAI-compatible API.
    pub fn http_status(&self) -> u16 {
        match self {
            GatewayError::InvalidRequest(_) => 400,
            GatewayError::Unauthorized | GatewayError::KeyExpired => 401,
            GatewayError::ModelNotAllowed(_) => 403,
            GatewayError::UnknownModel(_) => 404,
            GatewayError::RateLimited { .. }
            | GatewayError::Overloaded(_)
            | GatewayError::BudgetExceeded(_)
            | GatewayError::KeyRateLimited { .. } => 429,
            GatewayError::UpstreamAuth { .. }
            | GatewayError::Upstream { .. }
            | GatewayError::Connect { .. }
            | GatewayError::Malformed { .. } => 502,
            GatewayError::NotConfigured(..) | GatewayError::CircuitOpen(_) => 503,
            GatewayError::Timeout(_) => 504,
            GatewayError::Cancelled => 499,
            GatewayError::Internal(_) => 500,
        }
    }

    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            GatewayError::InvalidRequest(_) => tonic::Status::invalid_argument(message),
            GatewayError::UnknownModel(_) => tonic::Status::not_found(message),
            GatewayError::NotConfigured(..) => tonic::Status::failed_precondition(message),
            GatewayError::Unauthorized | GatewayError::KeyExpired => {
                tonic::Status::unauthenticated(message)
            }
            GatewayError::ModelNotAllowed(_) => tonic::Status::permission_denied(message),
            GatewayError::RateLimited { .. }
            | GatewayError::Overloaded(_)
            | GatewayError::BudgetExceeded(_)
            | GatewayError::KeyRateLimited { .. } => tonic::Status::resource_exhausted(message),
            GatewayError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            GatewayError::Cancelled => tonic::Status::cancelled(message),
            GatewayError::Internal(_) => tonic::Status::internal(message),
            GatewayError::UpstreamAuth { .. }
            | GatewayError::Upstream { .. }
            | GatewayError::Connect { .. }
            | GatewayError::Malformed { .. }
            | GatewayError::CircuitOpen(_) => tonic::Status::unavailable(message),
        }
    }
}
