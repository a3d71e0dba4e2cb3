//! The project workspace behind `/workspace`, `/lsp` and `/ws/terminal`: per-edge state
//! (caches, open terminals, language servers) and the pieces the routes share.
//!
//! Files and git go through `gathering_tools` (`files`, `git`): the same confinement and the
//! same git layer as the agents' tools. A project's directory comes from the project store
//! (`gathering_tools::project::resolve_root`), the one resolver every caller uses.
//!
//! What lives in this process only: the caches ([`cache`]), terminals (bound to their
//! WebSocket, so to this edge) and language servers ([`crate::lsp`], started on demand by
//! whichever edge gets a request). What must be shared lives in PostgreSQL: activities
//! ([`activities`]).

pub mod activities;
pub mod cache;
pub mod config;
pub mod info;
pub mod python;
pub mod tree;

use std::sync::Arc;

use gathering_tools::ProjectRoot;
use gathering_tools::project::{ProjectError, resolve_root};
use gathering_tools::{Grants, Permission};

pub use config::{ExecAccess, WorkspaceConfig};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// The workspace's per-edge state.
pub struct Workspace {
    pub config: WorkspaceConfig,
    pub cache: Arc<cache::WorkspaceCache>,
    pub terminals: crate::terminal::Registry,
    pub lsp: Arc<crate::lsp::LspManager>,
}

impl Workspace {
    pub fn new(config: WorkspaceConfig) -> Self {
        Self {
            cache: Arc::new(cache::WorkspaceCache::new(config.cache_ttl)),
            terminals: crate::terminal::Registry::new(
                config.terminals_per_user,
                config.terminals_total,
            ),
            lsp: crate::lsp::LspManager::start(config.lsp.clone()),
            config,
        }
    }

    /// Stops every language server of this edge (shutdown). Terminals close themselves on
    /// the shutdown signal and kill their processes when their task ends, however it ends.
    pub async fn shutdown(&self) {
        self.lsp.shutdown_all().await;
    }
}

/// The project's root directory, through the project store.
pub async fn project_root(state: &AppState, id: i64) -> Result<ProjectRoot, ApiError> {
    let client = state.pool.get().await?;
    resolve_root(&client, id, &state.config.tools.project_roots)
        .await
        .map_err(|e| match e {
            ProjectError::NotFound(_) => ApiError::NotFound(format!("Project {id} not found")),
            ProjectError::Db(m) => ApiError::Internal(m),
            ProjectError::Forbidden(m) => ApiError::Forbidden(m),
            other => ApiError::BadRequest(other.to_string()),
        })
}

/// The caller's tool permissions: everything for admins, `GATHERING_TOOL_GRANTS` for others
/// (the same rule as `/tools/execute`, so the workspace gives no user more than the tools do).
pub fn grants(state: &AppState, user: &AuthUser) -> Grants {
    if user.0.is_admin() {
        Grants::all()
    } else {
        state.config.tools.grants
    }
}

/// 403 unless the caller holds every permission in `needed`.
pub fn require(state: &AppState, user: &AuthUser, needed: &[Permission]) -> Result<(), ApiError> {
    let have = grants(state, user);
    match needed.iter().find(|p| !have.contains(**p)) {
        None => Ok(()),
        Some(p) => Err(ApiError::Forbidden(format!(
            "Permission '{}' is required for this workspace operation",
            p.as_str()
        ))),
    }
}

/// Whether the caller may execute code on the server (terminal, run-python):
/// `GATHERING_WORKSPACE_EXEC` and the execute permission.
pub fn exec_allowed(state: &AppState, is_admin: bool) -> Result<(), String> {
    match state.workspace.config.exec {
        ExecAccess::Off => Err("Code execution through the workspace is disabled".into()),
        ExecAccess::Admin if !is_admin => {
            Err("Code execution through the workspace is restricted to admins".into())
        }
        _ if !is_admin && !state.config.tools.grants.contains(Permission::Execute) => {
            Err("Permission 'execute' is required to run code".into())
        }
        _ => Ok(()),
    }
}
