//! The `schedules` skill: list and inspect scheduled actions, run one now (the same path as
//! `POST /scheduled-actions/{id}/trigger`: a run row and a dispatch job, exactly once), pause and
//! resume them.

use std::sync::Arc;

use gathering_schedule::definition;
use gathering_tools::{Category, Permission, Registry, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PlatformDeps, db, def, id, parse, with};

const SKILL: &str = "schedules";
/// The `source` of the events these tools publish.
const SOURCE: &str = "tools";

#[derive(Deserialize)]
struct ById {
    action_id: i64,
}

const READ: &[Permission] = &[Permission::Read];
const WRITE: &[Permission] = &[Permission::Read, Permission::Write];

/// The input of the tools that name one scheduled action.
fn by_id() -> Value {
    json!({"type": "object", "properties": {"action_id": id()}, "required": ["action_id"], "additionalProperties": false})
}

/// Registers the skill's tools, one function each, in the order the registry lists them.
pub fn register(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    register_schedule_list(reg, deps)?;
    register_schedule_get(reg, deps)?;
    register_schedule_run_now(reg, deps)?;
    register_schedule_status(
        reg,
        deps,
        ("schedule_pause", "Pause a scheduled action"),
        "active",
        "paused",
    )?;
    register_schedule_status(
        reg,
        deps,
        ("schedule_resume", "Resume a paused scheduled action"),
        "paused",
        "active",
    )
}

fn register_schedule_list(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("schedule_list", SKILL, Category::Gathering, "List scheduled actions", READ).schema(json!({
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["active", "paused", "disabled", "expired"]}, "agent_id": id()},
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                status: Option<String>,
                agent_id: Option<i64>,
            }
            let i: In = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let rows: Vec<Value> = c
                .query(
                    "SELECT to_jsonb(v) - 'action_config' FROM public.scheduled_actions_dashboard v \
                     WHERE ($1::text IS NULL OR status::text = $1) AND ($2::int8 IS NULL OR agent_id = $2) \
                     ORDER BY created_at DESC LIMIT 200",
                    &[&i.status, &i.agent_id],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
            Ok(ToolOutput::ok(format!("{} schedule(s)", rows.len()), json!({"schedules": rows})))
        }),
    )
}

fn register_schedule_get(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("schedule_get", SKILL, Category::Gathering, "A scheduled action", READ).schema(by_id()),
        with(deps, |deps, _ctx, input| async move {
            let i: ById = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let row: Value = c
                .query_opt("SELECT to_jsonb(v) - 'action_config' FROM public.scheduled_actions_dashboard v WHERE id = $1", &[&i.action_id])
                .await
                .map_err(db)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(db)?
                .ok_or_else(|| ToolError::Missing(format!("Scheduled action {} not found", i.action_id)))?;
            Ok(ToolOutput::ok("schedule", row))
        }),
    )
}

fn register_schedule_run_now(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "schedule_run_now",
            SKILL,
            Category::Gathering,
            "Run a scheduled action now (executors dispatch it)",
            WRITE,
        )
        .schema(by_id()),
        with(deps, |deps, _ctx, input| async move {
            let i: ById = parse(input)?;
            let mut c = deps.pool.get().await.map_err(db)?;
            let tx = c.transaction().await.map_err(db)?;
            let run = gathering_schedule::store::trigger_now(&tx, i.action_id, SOURCE)
                .await
                .map_err(db)?;
            if run.is_none() {
                return Err(ToolError::Missing(format!(
                    "Scheduled action {} not found",
                    i.action_id
                )));
            }
            tx.commit().await.map_err(db)?;
            Ok(ToolOutput::ok(
                "triggered",
                json!({"action_id": i.action_id, "status": "triggered"}),
            ))
        }),
    )
}

/// `schedule_pause` and `schedule_resume`: `from` → `to`. Through the table's owner, as the API
/// does: an event per change, and a resumed recurring schedule starts again from now (its
/// paused time is not "missed").
fn register_schedule_status(
    reg: &Registry,
    deps: &Arc<PlatformDeps>,
    (name, desc): (&'static str, &'static str),
    from: &'static str,
    to: &'static str,
) -> Result<(), ToolError> {
    reg.register(
        def(name, SKILL, Category::Gathering, desc, WRITE).schema(by_id()),
        with(deps, move |deps, _ctx, input| async move {
            let i: ById = parse(input)?;
            let mut c = deps.pool.get().await.map_err(db)?;
            let tx = c.transaction().await.map_err(db)?;
            let changed = if to == "paused" {
                definition::pause(&tx, i.action_id, SOURCE)
                    .await
                    .map_err(db)?
            } else {
                definition::resume(&tx, i.action_id, SOURCE)
                    .await
                    .map_err(db)?
                    .is_some()
            };
            if !changed {
                return Err(ToolError::Missing(format!(
                    "Scheduled action {} is not {from}",
                    i.action_id
                )));
            }
            tx.commit().await.map_err(db)?;
            Ok(ToolOutput::ok(
                to,
                json!({"action_id": i.action_id, "status": to}),
            ))
        }),
    )
}
