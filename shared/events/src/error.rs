//! Event log errors.

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
}

impl From<gathering_db::tokio_postgres::Error> for EventError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        EventError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for EventError {
    fn from(e: gathering_db::PoolError) -> Self {
        EventError::Db(e.into())
    }
}
