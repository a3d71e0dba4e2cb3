//! The crate's error type. Registry errors carry the messages of BEHAVIOUR.md A5; the failure
//! variants a tool returns say what went wrong in words an agent can act on. `code()` is the
//! machine-readable `SkillResponse.error`.

use serde_json::{Value, json};

use crate::permission::Grants;
use crate::response::ConfirmationType;
use crate::validate::{Violation, summary};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("Tool name cannot be empty")]
    EmptyName,
    #[error("Tool description cannot be empty")]
    EmptyDescription,
    #[error("Tool '{tool}' has an invalid input schema: {reason}")]
    InvalidSchema { tool: String, reason: String },
    #[error("Tool '{0}' is already registered. Use unregister() first to replace it.")]
    AlreadyRegistered(String),
    #[error("Tool '{0}' not found in registry")]
    NotFound(String),
    #[error("Invalid parameters for tool '{tool}': {}", summary(.violations))]
    Validation {
        tool: String,
        violations: Vec<Violation>,
    },
    #[error("Tool '{tool}' needs permission(s) {missing} (granted: {granted})")]
    PermissionDenied {
        tool: String,
        missing: Grants,
        granted: Grants,
    },
    #[error("Skill '{skill}' is not enabled for agent {agent_id}")]
    NotEnabled { skill: String, agent_id: i64 },
    #[error(
        "Tool '{tool}' is dangerous and needs confirmation: call it again with confirmed = true"
    )]
    NeedsConfirmation {
        tool: String,
        confirmation: ConfirmationType,
    },
    #[error("Tool '{tool}' timed out after {ms} ms and was cancelled")]
    Timeout { tool: String, ms: u64 },
    #[error("Tool '{tool}' was cancelled")]
    Cancelled { tool: String },
    #[error("Error executing tool '{tool}': {message}")]
    Internal { tool: String, message: String },

    /// The input passed the schema but makes no sense (unknown goal, bad branch name, …).
    #[error("{0}")]
    InvalidInput(String),
    /// A security rule refused the call (path escape, blocked command, SSRF target).
    #[error("{0}")]
    Refused(String),
    /// The thing the input names does not exist.
    #[error("{0}")]
    Missing(String),
    /// Input or output over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The operation ran and failed (I/O error, remote error, …).
    #[error("{0}")]
    Failed(String),
    #[error("database error: {0}")]
    Db(String),
}

impl ToolError {
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::EmptyName
            | ToolError::EmptyDescription
            | ToolError::InvalidSchema { .. }
            | ToolError::AlreadyRegistered(_) => "registry_error",
            ToolError::NotFound(_) => "tool_not_found",
            ToolError::Validation { .. } => "validation_error",
            ToolError::PermissionDenied { .. } => "permission_denied",
            ToolError::NotEnabled { .. } => "not_enabled",
            ToolError::NeedsConfirmation { .. } => "needs_confirmation",
            ToolError::Timeout { .. } => "timeout",
            ToolError::Cancelled { .. } => "cancelled",
            ToolError::Internal { .. } => "internal_error",
            ToolError::InvalidInput(_) => "invalid_input",
            ToolError::Refused(_) => "refused",
            ToolError::Missing(_) => "not_found",
            ToolError::TooLarge(_) => "too_large",
            ToolError::Failed(_) => "execution_failed",
            ToolError::Db(_) => "database_error",
        }
    }

    /// Structured details for `SkillResponse.data`.
    pub fn details(&self) -> Value {
        match self {
            ToolError::Validation { violations, .. } => json!({ "violations": violations }),
            ToolError::PermissionDenied {
                missing, granted, ..
            } => json!({ "missing": missing.names(), "granted": granted.names() }),
            _ => Value::Null,
        }
    }

    pub fn io(context: &str, e: std::io::Error) -> ToolError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ToolError::Missing(format!("{context}: not found")),
            std::io::ErrorKind::PermissionDenied => {
                ToolError::Refused(format!("{context}: permission denied"))
            }
            _ => ToolError::Failed(format!("{context}: {e}")),
        }
    }
}

impl From<gathering_db::tokio_postgres::Error> for ToolError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        ToolError::Db(e.to_string())
    }
}

impl From<gathering_db::PoolError> for ToolError {
    fn from(e: gathering_db::PoolError) -> Self {
        ToolError::Db(e.to_string())
    }
}
