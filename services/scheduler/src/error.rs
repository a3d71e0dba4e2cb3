//! Scheduler errors.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] gathering_core::ConfigError),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Schedule(#[from] gathering_schedule::ScheduleError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("scheduler task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<gathering_db::tokio_postgres::Error> for Error {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        Error::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for Error {
    fn from(e: gathering_db::PoolError) -> Self {
        Error::Db(e.into())
    }
}
