//! Executor errors.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] gathering_core::ConfigError),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Queue(#[from] gathering_queue::QueueError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("executor task failed: {0}")]
    Task(String),
    #[error("executor task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}
