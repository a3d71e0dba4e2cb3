//! The built-in skills. Each module registers its tools with their schemas; the registry does
//! the validation, permission, enablement, confirmation and timeout checks, so a tool body
//! starts from valid input.
//!
//! Not here, by design of the registry they plug into through
//! [`Registry::register`](crate::Registry::register): `ai`, `pipelines`, `tasks`, `schedules`,
//! `goals` (gathering-agents: the gateway, the job queue, the goal rules) and `circles`
//! (gathering-circles: routing, admission and events shared with the API).

pub mod analysis;
pub mod calendar;
pub mod cloud;
pub mod code;
pub mod database;
pub mod docs;
pub mod email;
pub mod filesystem;
pub mod git;
pub mod git_remote;
pub mod html;
pub mod http;
pub mod image;
pub mod monitoring;
pub mod notifications;
pub mod pdf;
pub mod projects;
pub mod shell;
pub mod testing;
mod walk;
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
    git_remote::register(reg, svc)?;
    shell::register(reg, svc)?;
    code::register(reg, svc)?;
    http::register(reg, svc)?;
    notifications::register(reg, svc)?;
    web::register(reg, svc)?;
    pdf::register(reg)?;
    calendar::register(reg)?;
    database::register(reg, svc)?;
    email::register(reg, svc)?;
    cloud::register(reg, svc)?;
    testing::register(reg)?;
    analysis::register(reg)?;
    docs::register(reg)?;
    image::register(reg)?;
    monitoring::register(reg, svc)?;
    if let Some(pool) = &svc.pool {
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
