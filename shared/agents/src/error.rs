//! Agent runtime errors.

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Agent {0} not found")]
    NotFound(i64),
    /// Another message to this agent is being handled (on any edge).
    #[error("Agent is already processing a message")]
    AlreadyProcessing,
    #[error("{0}")]
    Invalid(String),
    #[error("the language model failed: {0}")]
    Llm(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Queue(#[from] gathering_queue::QueueError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
    #[error(transparent)]
    Tools(#[from] gathering_tools::ToolError),
}

impl From<gathering_db::tokio_postgres::Error> for AgentError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        AgentError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for AgentError {
    fn from(e: gathering_db::PoolError) -> Self {
        AgentError::Db(e.into())
    }
}

impl From<tonic::Status> for AgentError {
    fn from(s: tonic::Status) -> Self {
        AgentError::Llm(s.message().to_owned())
    }
}
