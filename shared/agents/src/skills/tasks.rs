//! The `tasks` skill: start, list, inspect, pause, resume and cancel background tasks (the same
//! operations as `/background-tasks`, with the same global limit).

use std::sync::Arc;

use gathering_tools::{Category, Permission, Registry, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PlatformDeps, db, def, id, parse, with};
use crate::tasks::{self, NewTask, TaskError};

const SKILL: &str = "tasks";

fn task_err(e: TaskError) -> ToolError {
    match e {
        TaskError::NotFound | TaskError::AgentNotFound(_) => ToolError::Missing(e.to_string()),
        TaskError::LimitReached(_) | TaskError::InvalidState(_) => {
            ToolError::InvalidInput(e.to_string())
        }
        TaskError::Agent(e) => db(e),
    }
}

async fn row(deps: &PlatformDeps, task_id: i64) -> Result<Value, ToolError> {
    let c = deps.pool.get().await.map_err(db)?;
    tasks::dashboard_row(&c, task_id)
        .await
        .map_err(db)?
        .ok_or_else(|| ToolError::Missing("Task not found".into()))
}

#[derive(Deserialize)]
struct TaskId {
    task_id: i64,
}

pub fn register(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    register_task_start(reg, deps)?;
    register_task_list(reg, deps)?;
    register_task_get(reg, deps)?;
    register_task_steps(reg, deps)?;
    register_task_pause(reg, deps)?;
    register_task_resume(reg, deps)?;
    register_task_cancel(reg, deps)?;
    Ok(())
}

const READ: &[Permission] = &[Permission::Read];
const WRITE: &[Permission] = &[Permission::Read, Permission::Write];
fn by_id_schema() -> Value {
    json!({"type": "object", "properties": {"task_id": id()}, "required": ["task_id"], "additionalProperties": false})
}

fn register_task_start(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "task_start",
            SKILL,
            Category::Gathering,
            "Start a background task: an agent works towards a goal on its own",
            WRITE,
        )
        .schema(json!({
            "type": "object",
            "properties": {
                "agent_id": id(),
                "goal": {"type": "string", "minLength": 1, "maxLength": 20000},
                "max_steps": {"type": "integer", "minimum": 1, "maximum": 500},
                "timeout_seconds": {"type": "integer", "minimum": 60, "maximum": 86400},
                "goal_context": {"type": "object"},
            },
            "required": ["goal"],
            "additionalProperties": false,
        })),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                agent_id: Option<i64>,
                goal: String,
                max_steps: Option<i32>,
                timeout_seconds: Option<i32>,
                goal_context: Option<Value>,
            }
            let i: In = parse(input)?;
            let agent_id = i.agent_id.or(ctx.agent_id).ok_or_else(|| {
                ToolError::InvalidInput("agent_id is required (no calling agent)".into())
            })?;
            let task = NewTask {
                agent_id,
                goal: i.goal,
                circle_id: None,
                goal_context: i.goal_context.unwrap_or_else(|| json!({})),
                max_steps: i.max_steps.unwrap_or(50),
                timeout_seconds: i.timeout_seconds.unwrap_or(3600),
                checkpoint_interval: 5,
                created_by: ctx.agent_id.map(|a| format!("agent:{a}")),
            };
            let id = tasks::create(&deps.pool, &task, deps.max_live_tasks)
                .await
                .map_err(task_err)?;
            Ok(ToolOutput::ok(
                format!("task {id} started"),
                row(&deps, id).await?,
            ))
        }),
    )
}

fn register_task_list(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("task_list", SKILL, Category::Gathering, "List background tasks", READ).schema(json!({
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["pending", "running", "paused", "completed", "failed", "cancelled", "timeout"]},
                "agent_id": id(),
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            },
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                status: Option<String>,
                agent_id: Option<i64>,
                limit: Option<i64>,
            }
            let i: In = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let rows: Vec<Value> = c
                .query(
                    "SELECT to_jsonb(t) FROM public.background_tasks_dashboard t \
                     WHERE ($1::text IS NULL OR status::text = $1) AND ($2::int8 IS NULL OR agent_id = $2) LIMIT $3",
                    &[&i.status, &i.agent_id, &i.limit.unwrap_or(50)],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
            Ok(ToolOutput::ok(format!("{} task(s)", rows.len()), json!({"tasks": rows})))
        }),
    )
}

fn register_task_get(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "task_get",
            SKILL,
            Category::Gathering,
            "A background task's state",
            READ,
        )
        .schema(by_id_schema().clone()),
        with(deps, |deps, _ctx, input| async move {
            let i: TaskId = parse(input)?;
            Ok(ToolOutput::ok("task", row(&deps, i.task_id).await?))
        }),
    )
}

fn register_task_steps(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("task_steps", SKILL, Category::Gathering, "A background task's steps, newest first", READ).schema(json!({
            "type": "object",
            "properties": {"task_id": id(), "limit": {"type": "integer", "minimum": 1, "maximum": 500}},
            "required": ["task_id"],
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                task_id: i64,
                limit: Option<i64>,
            }
            let i: In = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let steps: Vec<Value> = c
                .query(
                    "SELECT to_jsonb(s) FROM circle.background_task_steps s WHERE task_id = $1 \
                     ORDER BY step_number DESC, id DESC LIMIT $2",
                    &[&i.task_id, &i.limit.unwrap_or(100)],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
            Ok(ToolOutput::ok(format!("{} step(s)", steps.len()), json!({"steps": steps})))
        }),
    )
}

fn register_task_pause(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "task_pause",
            SKILL,
            Category::Gathering,
            "Pause a background task (it keeps its checkpoint)",
            WRITE,
        )
        .schema(by_id_schema().clone()),
        with(deps, |deps, _ctx, input| async move {
            let i: TaskId = parse(input)?;
            tasks::pause(&deps.pool, &deps.queue, i.task_id)
                .await
                .map_err(task_err)?;
            Ok(ToolOutput::ok(
                "paused",
                json!({"task_id": i.task_id, "status": "paused"}),
            ))
        }),
    )
}

fn register_task_resume(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "task_resume",
            SKILL,
            Category::Gathering,
            "Resume a paused background task from its checkpoint",
            WRITE,
        )
        .schema(by_id_schema().clone()),
        with(deps, |deps, _ctx, input| async move {
            let i: TaskId = parse(input)?;
            tasks::resume(&deps.pool, i.task_id)
                .await
                .map_err(task_err)?;
            Ok(ToolOutput::ok(
                "resumed",
                json!({"task_id": i.task_id, "status": "resumed"}),
            ))
        }),
    )
}

fn register_task_cancel(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "task_cancel",
            SKILL,
            Category::Gathering,
            "Cancel a background task",
            WRITE,
        )
        .schema(by_id_schema()),
        with(deps, |deps, _ctx, input| async move {
            let i: TaskId = parse(input)?;
            tasks::cancel(&deps.pool, &deps.queue, i.task_id)
                .await
                .map_err(task_err)?;
            Ok(ToolOutput::ok(
                "cancelled",
                json!({"task_id": i.task_id, "status": "cancelled"}),
            ))
        }),
    )
}
