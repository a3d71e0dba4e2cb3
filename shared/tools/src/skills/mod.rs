//! The built-in skills. Each module registers its tools with their schemas; the registry does
//! the validation, permission, enablement, confirmation and timeout checks, so a tool body
//! starts from valid input.
//!
//! Not here, by design of the registry they plug into through
//! [`Registry::register`](crate::Registry::register): `ai`, `pipelines`, `tasks`, `schedules`
//! (gathering-agents: the gateway and the job queue) and `circles` (gathering-circles: routing,
//! admission and events shared with the API).

pub mod code;
pub mod filesystem;
pub mod git;
pub mod goals;
pub mod html;
pub mod http;
pub mod notifications;
pub mod projects;
pub mod shell;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use gathering_db::Pool;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ToolsConfig;
use crate::context::CallContext;
use crate::error::ToolError;
use crate::net::GuardedClient;
use crate::registry::{Registry, Tool, ToolOutput};

/// What skills share: the database (for GatheRing's own skills), the guarded HTTP client and
/// the settings.
pub struct Services {
    pub pool: Option<Pool>,
    pub http: GuardedClient,
    pub config: ToolsConfig,
}

/// Registers every built-in skill. The database skills are registered only with a pool.
pub fn register_builtin(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    filesystem::register(reg)?;
    git::register(reg)?;
    shell::register(reg, svc)?;
    code::register(reg, svc)?;
    http::register(reg, svc)?;
    notifications::register(reg, svc)?;
    web::register(reg, svc)?;
    if let Some(pool) = &svc.pool {
        goals::register(reg, pool)?;
        projects::register(reg, pool)?;
    }
    Ok(())
}

/// Decodes a tool's input (already schema-valid) into its typed form.
pub(crate) fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ToolError> {
    serde_json::from_value(input)
        .map_err(|e| ToolError::InvalidInput(format!("invalid input: {e}")))
}

/// A tool that needs shared state `S`.
pub(crate) fn with<S, F, Fut>(state: Arc<S>, f: F) -> impl Tool
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    move |ctx: CallContext, input: Value| f(state.clone(), ctx, input)
}

/// A database error as the caller can act on it: a missing referenced row, a duplicate or a
/// rejected value is the input's fault; anything else is a database error.
pub(crate) fn db_err(e: gathering_db::tokio_postgres::Error) -> ToolError {
    use gathering_db::tokio_postgres::error::SqlState;
    let detail = e
        .as_db_error()
        .map(|d| d.detail().unwrap_or(d.message()).to_owned())
        .unwrap_or_else(|| e.to_string());
    match e.code() {
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
            ToolError::Missing(format!("a referenced row does not exist: {detail}"))
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            ToolError::InvalidInput(format!("already exists: {detail}"))
        }
        Some(c)
            if *c == SqlState::CHECK_VIOLATION || *c == SqlState::INVALID_TEXT_REPRESENTATION =>
        {
            ToolError::InvalidInput(format!("value refused: {detail}"))
        }
        _ => ToolError::Db(e.to_string()),
    }
}

/// The agent a GatheRing-domain tool acts for: the input's, else the caller's.
pub(crate) fn agent_or(ctx: &CallContext, given: Option<i64>) -> Result<i64, ToolError> {
    given
        .or(ctx.agent_id)
        .ok_or_else(|| ToolError::InvalidInput("agent_id is required (no calling agent)".into()))
}
