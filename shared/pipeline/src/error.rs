//! The crate's errors. The messages of the not-found and wrong-status variants are the
//! contract's `detail` strings.

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("Pipeline not found")]
    NotFound,
    #[error("Run not found")]
    RunNotFound,
    #[error("Cannot run pipeline in '{0}' status. Activate it first.")]
    NotActive(String),
    #[error("Cannot cancel run in '{0}' status")]
    NotCancellable(String),
    #[error("Approval not found")]
    ApprovalNotFound,
    #[error("You are not one of the approvers of this node")]
    NotApprover,
    /// A decision that cannot be made (already decided, run over): the reason.
    #[error("{0}")]
    Conflict(String),
    #[error("Cannot retry run in '{0}' status: only failed, cancelled or timed-out runs")]
    NotRetryable(String),
    /// A retry's `from_node_id` the run or the pipeline does not have.
    #[error("{0}")]
    UnknownNode(String),
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Queue(#[from] gathering_queue::QueueError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
}

impl From<gathering_db::tokio_postgres::Error> for PipelineError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        PipelineError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for PipelineError {
    fn from(e: gathering_db::PoolError) -> Self {
        PipelineError::Db(e.into())
    }
}
