//! Queue errors.

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("invalid job: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
}

impl From<gathering_db::tokio_postgres::Error> for QueueError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        QueueError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for QueueError {
    fn from(e: gathering_db::PoolError) -> Self {
        QueueError::Db(e.into())
    }
}
