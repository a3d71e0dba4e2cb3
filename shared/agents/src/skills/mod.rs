//! Skills that need more than the tools crate has: `ai` (the LLM gateway), and GatheRing's own
//! `tasks`, `pipelines` and `schedules` (the job queue) and `goals` (the goal rules of
//! `crate::goals`, which decompose with the model and execute through background tasks). They register into the same tool
//! registry as the built-in skills, so they are validated, permission-checked and enabled per
//! agent like every other tool. The edge and the executor register them at start.

mod ai;
mod goals;
mod pipelines;
mod schedules;
mod tasks;

use std::future::Future;
use std::sync::Arc;

use gathering_db::Pool;
use gathering_tools::{
    CallContext, Category, Permission, Registry, Tool, ToolDefinition, ToolError, ToolOutput,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::llm::Llm;

/// What these skills use.
pub struct PlatformDeps {
    pub pool: Pool,
    pub llm: Llm,
    pub queue: gathering_queue::Queue,
    /// The live background-task limit (`BACKGROUND_TASKS_MAX_CONCURRENT`).
    pub max_live_tasks: i64,
    /// Model for `ai` tools when the input names none.
    pub default_model: String,
}

pub fn register_platform(registry: &Registry, deps: PlatformDeps) -> Result<(), ToolError> {
    let deps = Arc::new(deps);
    ai::register(registry, &deps)?;
    tasks::register(registry, &deps)?;
    pipelines::register(registry, &deps)?;
    schedules::register(registry, &deps)?;
    goals::register(registry, &deps)?;
    Ok(())
}

fn def(
    name: &str,
    skill: &str,
    category: Category,
    desc: &str,
    perms: &[Permission],
) -> ToolDefinition {
    ToolDefinition::new(name, skill, category, desc).permissions(perms)
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ToolError> {
    serde_json::from_value(input)
        .map_err(|e| ToolError::InvalidInput(format!("invalid input: {e}")))
}

fn with<F, Fut>(deps: &Arc<PlatformDeps>, f: F) -> impl Tool
where
    F: Fn(Arc<PlatformDeps>, CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    let deps = deps.clone();
    move |ctx: CallContext, input: Value| f(deps.clone(), ctx, input)
}

fn db(e: impl std::fmt::Display) -> ToolError {
    ToolError::Db(e.to_string())
}

fn id() -> Value {
    serde_json::json!({"type": "integer", "minimum": 1})
}
