//! Schedule errors: what is wrong with a schedule a client sent (each naming the body field it
//! concerns, for a 400/422), and failures of the database writes.

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The contract's 400: the field a schedule type needs is missing.
    #[error("{field} required for {kind} schedule")]
    Missing {
        field: &'static str,
        kind: &'static str,
    },
    /// A field is present but unusable (422, naming the field and the problem).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Queue(#[from] gathering_queue::QueueError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
}

impl ScheduleError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ScheduleError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The body field a validation error concerns (`None` for database failures).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ScheduleError::Missing { field, .. } | ScheduleError::Invalid { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    /// The message without the field name (for a 422 whose `loc` already names it).
    pub fn reason(&self) -> String {
        match self {
            ScheduleError::Invalid { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }
}

impl From<gathering_db::tokio_postgres::Error> for ScheduleError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        ScheduleError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for ScheduleError {
    fn from(e: gathering_db::PoolError) -> Self {
        ScheduleError::Db(e.into())
    }
}
