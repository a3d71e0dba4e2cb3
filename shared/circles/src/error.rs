//! What can go wrong, in words a caller can act on; the edge maps each variant to the
//! contract's status and shape in one place.

use gathering_agents::AgentError;

/// One refused field: where it was (`body`, `query`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub place: &'static str,
    pub field: String,
    pub msg: String,
}

impl Violation {
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self {
            place: "body",
            field: field.into(),
            msg: msg.into(),
        }
    }

    pub fn query(field: &str, msg: impl Into<String>) -> Self {
        Self {
            place: "query",
            field: field.into(),
            msg: msg.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CircleError {
    /// 404 "Circle '{name}' not found".
    #[error("Circle '{0}' not found")]
    CircleNotFound(String),
    #[error("Task {0} not found")]
    TaskNotFound(i64),
    #[error("Agent {0} not found")]
    AgentNotFound(i64),
    #[error("Conversation '{0}' not found")]
    ConversationNotFound(i64),
    #[error("Conflict {0} not found")]
    ConflictNotFound(i64),
    /// 404 with its own words (not a member, no such project…).
    #[error("{0}")]
    Missing(String),
    /// 409: the name or membership already exists.
    #[error("{0}")]
    Exists(String),
    /// 400: the request is valid but the state does not allow it.
    #[error("{0}")]
    BadRequest(String),
    /// 429: a count limit is reached.
    #[error("{0}")]
    Limit(String),
    /// 422: the input is refused, field by field.
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// With the server's message and SQLSTATE (for logs and job errors; never sent to clients).
    #[error("{}", describe(.0))]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Queue(#[from] gathering_queue::QueueError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
}

fn describe(e: &gathering_db::DbError) -> String {
    match e {
        gathering_db::DbError::Postgres(pg) => match pg.as_db_error() {
            Some(db) => format!(
                "database: {} ({}){}",
                db.message(),
                db.code().code(),
                db.detail().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            None => e.to_string(),
        },
        other => other.to_string(),
    }
}

impl CircleError {
    pub fn invalid(field: &str, msg: impl Into<String>) -> Self {
        CircleError::Invalid(vec![Violation::body(field, msg)])
    }

    /// A row that does not decode as expected: a database error, never a panic.
    pub fn decode(e: gathering_db::tokio_postgres::Error) -> Self {
        CircleError::Db(e.into())
    }
}

impl From<gathering_db::tokio_postgres::Error> for CircleError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        CircleError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for CircleError {
    fn from(e: gathering_db::PoolError) -> Self {
        CircleError::Db(e.into())
    }
}

/// Collects violations; `finish` is `Ok` when there were none.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, v: impl FnOnce() -> Violation) -> &mut Self {
        if !ok {
            self.0.push(v());
        }
        self
    }

    pub fn push(&mut self, v: Violation) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn finish(&mut self) -> Result<(), CircleError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CircleError::Invalid(std::mem::take(&mut self.0)))
        }
    }
}
