//! Auth errors: start-up failures and request failures, each mapped to one gRPC status.
//! Internal causes are logged, never sent to the caller.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] gathering_core::ConfigError),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("auth task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("Incorrect email or password")]
    BadCredentials,
    #[error("Too many failed login attempts; try again later")]
    Locked { retry_after: Duration },
    #[error("Email already registered")]
    EmailTaken,
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("User is inactive or does not exist")]
    Inactive,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Precondition(String),
    #[error("database: {0}")]
    Db(#[from] gathering_db::DbError),
    #[error("sealing: {0}")]
    Seal(#[from] gathering_core::seal::SealError),
    #[error("password: {0}")]
    Password(#[from] crate::password::PasswordError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<gathering_db::tokio_postgres::Error> for AuthError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        AuthError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for AuthError {
    fn from(e: gathering_db::PoolError) -> Self {
        AuthError::Db(e.into())
    }
}

impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> Self {
        use tonic::Status;
        match &e {
            AuthError::InvalidInput(m) => Status::invalid_argument(m.clone()),
            AuthError::BadCredentials | AuthError::Inactive | AuthError::InvalidToken(_) => {
                Status::unauthenticated(e.to_string())
            }
            AuthError::Locked { retry_after } => {
                let mut s = Status::resource_exhausted(e.to_string());
                if let Ok(v) = retry_after.as_secs().max(1).to_string().parse() {
                    s.metadata_mut().insert("retry-after", v);
                }
                s
            }
            AuthError::Password(crate::password::PasswordError::Busy) => {
                Status::unavailable("too many logins in progress; try again shortly")
            }
            AuthError::EmailTaken => Status::already_exists(e.to_string()),
            AuthError::NotFound(m) => Status::not_found(m.clone()),
            AuthError::Forbidden(m) => Status::permission_denied(m.clone()),
            AuthError::Precondition(m) => Status::failed_precondition(m.clone()),
            AuthError::Db(_)
            | AuthError::Seal(_)
            | AuthError::Password(_)
            | AuthError::Internal(_) => {
                tracing::error!(error = %e, "auth request failed");
                Status::internal("internal error")
            }
        }
    }
}
