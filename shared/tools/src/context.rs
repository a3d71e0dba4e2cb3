//! Who is calling a tool and on what: the caller's grants, whether a dangerous call is
//! confirmed, the agent (for per-agent enablement), the project root, a cancellation token
//! and an optional tighter timeout.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::ToolError;
use crate::permission::Grants;
use crate::root::ProjectRoot;

#[derive(Debug, Clone)]
pub struct CallContext {
    pub grants: Grants,
    pub confirmed: bool,
    pub agent_id: Option<i64>,
    pub project: Option<ProjectRoot>,
    /// Cancelling it stops the call (the tool's future is dropped: child processes are
    /// killed, connections closed).
    pub cancel: CancellationToken,
    /// A caller's own limit; the effective timeout is the smaller of this and the tool's.
    pub timeout: Option<Duration>,
}

impl CallContext {
    pub fn new(grants: Grants) -> Self {
        Self {
            grants,
            confirmed: false,
            agent_id: None,
            project: None,
            cancel: CancellationToken::new(),
            timeout: None,
        }
    }

    pub fn confirmed(mut self, confirmed: bool) -> Self {
        self.confirmed = confirmed;
        self
    }

    pub fn agent(mut self, agent_id: Option<i64>) -> Self {
        self.agent_id = agent_id;
        self
    }

    pub fn project(mut self, project: Option<ProjectRoot>) -> Self {
        self.project = project;
        self
    }

    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The project root, for tools that only work inside one.
    pub fn root(&self) -> Result<&ProjectRoot, ToolError> {
        self.project.as_ref().ok_or_else(|| {
            ToolError::InvalidInput(
                "this tool works inside a project: call it with a project (project_id)".into(),
            )
        })
    }
}
