//! The `goals` skill: create, update, list, get, complete, fail, add a subgoal. Every change
//! goes through `crate::goals`, so a goal changed by an agent's tool call follows the same
//! rules (transitions, blocking, roll-up), leaves the same activities (actor = the agent) and
//! sends the same events as one changed through `/goals`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gathering_tools::{CallContext, Category, Permission, Registry, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PlatformDeps, db, def, id, parse, with};
use crate::goals::{self, Actor, GoalError, GoalPatch, ListFilter, NewGoal, Transition};

const SKILL: &str = "goals";

fn goal_err(e: GoalError) -> ToolError {
    match e {
        GoalError::NotFound(m) => ToolError::Missing(m),
        GoalError::Refused(m) | GoalError::Model(m) => ToolError::InvalidInput(m),
        GoalError::Task(e) => ToolError::InvalidInput(e.to_string()),
        GoalError::Agent(e) => db(e),
    }
}

fn actor(ctx: &CallContext) -> Actor {
    match ctx.agent_id {
        Some(a) => Actor::agent(a),
        None => Actor::user("tool"),
    }
}

fn priority() -> Value {
    json!({"type": "string", "enum": goals::PRIORITIES})
}

fn status() -> Value {
    json!({"type": "string", "enum": goals::STATUSES})
}

fn tags() -> Value {
    json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}, "maxItems": 50})
}

fn deadline(d: Option<&str>) -> Result<Option<DateTime<Utc>>, ToolError> {
    d.map(|d| {
        DateTime::parse_from_rfc3339(d)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ToolError::InvalidInput(format!("deadline '{d}' is not an ISO-8601 date-time"))
            })
    })
    .transpose()
}

async fn goal(deps: &PlatformDeps, id: i64) -> Result<Value, ToolError> {
    goals::get(&deps.pool, id).await.map_err(goal_err)
}

fn defn(name: &str, desc: &str, write: bool) -> gathering_tools::ToolDefinition {
    let perms: &[Permission] = if write {
        &[Permission::Read, Permission::Write]
    } else {
        &[Permission::Read]
    };
    def(name, SKILL, Category::Gathering, desc, perms).output("goal row(s)")
}

pub fn register(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    register_goal_create(reg, deps)?;
    register_goal_update(reg, deps)?;
    register_goal_list(reg, deps)?;
    register_goal_get(reg, deps)?;
    register_goal_complete(reg, deps)?;
    register_goal_fail(reg, deps)?;
    register_goal_add_subgoal(reg, deps)?;
    Ok(())
}

fn register_goal_create(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn("goal_create", "Create a goal for an agent", true).schema(json!({
            "type": "object",
            "properties": {
                "agent_id": id(), "title": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string", "maxLength": 20000}, "priority": priority(),
                "circle_id": id(), "parent_id": id(),
                "success_criteria": {"type": "string", "maxLength": 5000},
                "deadline": {"type": "string", "maxLength": 64},
                "estimated_hours": {"type": "number", "minimum": 0, "maximum": 1000000},
                "tags": tags(),
            },
            "required": ["title"],
            "additionalProperties": false,
        })),
        with(deps, goal_create),
    )
}

fn register_goal_update(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn(
            "goal_update",
            "Update a goal's fields, status or progress",
            true,
        )
        .schema(json!({
            "type": "object",
            "properties": {
                "goal_id": id(), "title": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string", "maxLength": 20000}, "priority": priority(),
                "status": status(),
                "progress_percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "status_message": {"type": "string", "maxLength": 5000},
                "success_criteria": {"type": "string", "maxLength": 5000},
                "tags": tags(),
            },
            "required": ["goal_id"],
            "additionalProperties": false,
        })),
        with(deps, goal_update),
    )
}

fn register_goal_list(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn("goal_list", "List goals", false).schema(json!({
            "type": "object",
            "properties": {
                "agent_id": id(), "circle_id": id(), "parent_id": id(), "status": status(),
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
            "additionalProperties": false,
        })),
        with(deps, goal_list),
    )
}

fn register_goal_get(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn("goal_get", "Get a goal with its subgoals", false).schema(json!({
            "type": "object", "properties": {"goal_id": id()}, "required": ["goal_id"], "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            let i: IdInput = parse(input)?;
            let mut g = goal(&deps, i.goal_id).await?;
            let subs = goals::subgoals(&deps.pool, i.goal_id).await.map_err(goal_err)?;
            if let Some(o) = g.as_object_mut() {
                o.insert("subgoals".into(), Value::Array(subs));
            }
            Ok(ToolOutput::ok(format!("Goal {}", i.goal_id), g))
        }),
    )
}

fn register_goal_complete(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn("goal_complete", "Mark a goal completed", true).schema(json!({
            "type": "object",
            "properties": {"goal_id": id(), "result_summary": {"type": "string", "maxLength": 20000}},
            "required": ["goal_id"], "additionalProperties": false,
        })),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                goal_id: i64,
                result_summary: Option<String>,
            }
            let i: In = parse(input)?;
            let t = Transition::Complete {
                result_summary: i.result_summary,
                artifacts: None,
            };
            goals::transition(&deps.pool, i.goal_id, t, &actor(&ctx))
                .await
                .map_err(goal_err)?;
            let g = goal(&deps, i.goal_id).await?;
            Ok(ToolOutput::ok(format!("Goal {} completed", i.goal_id), g))
        }),
    )
}

fn register_goal_fail(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn("goal_fail", "Mark a goal failed", true).schema(json!({
            "type": "object",
            "properties": {
                "goal_id": id(), "reason": {"type": "string", "minLength": 1, "maxLength": 5000},
                "lessons_learned": {"type": "string", "maxLength": 20000},
            },
            "required": ["goal_id", "reason"], "additionalProperties": false,
        })),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                goal_id: i64,
                reason: String,
                lessons_learned: Option<String>,
            }
            let i: In = parse(input)?;
            let t = Transition::Fail {
                reason: i.reason,
                lessons_learned: i.lessons_learned,
            };
            goals::transition(&deps.pool, i.goal_id, t, &actor(&ctx))
                .await
                .map_err(goal_err)?;
            let g = goal(&deps, i.goal_id).await?;
            Ok(ToolOutput::ok(format!("Goal {} failed", i.goal_id), g))
        }),
    )
}

fn register_goal_add_subgoal(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        defn(
            "goal_add_subgoal",
            "Add a subgoal under a goal (same agent and circle)",
            true,
        )
        .schema(json!({
            "type": "object",
            "properties": {
                "parent_id": id(), "title": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string", "maxLength": 20000}, "priority": priority(),
            },
            "required": ["parent_id", "title"], "additionalProperties": false,
        })),
        with(deps, goal_add_subgoal),
    )
}

#[derive(Deserialize)]
struct IdInput {
    goal_id: i64,
}

#[derive(Deserialize)]
struct CreateInput {
    agent_id: Option<i64>,
    title: String,
    description: Option<String>,
    priority: Option<String>,
    circle_id: Option<i64>,
    parent_id: Option<i64>,
    success_criteria: Option<String>,
    deadline: Option<String>,
    estimated_hours: Option<f64>,
    #[serde(default)]
    tags: Vec<String>,
}

async fn goal_create(
    deps: Arc<PlatformDeps>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CreateInput = parse(input)?;
    let agent_id = i
        .agent_id
        .or(ctx.agent_id)
        .ok_or_else(|| ToolError::InvalidInput("agent_id is required (no calling agent)".into()))?;
    let new = NewGoal {
        agent_id,
        title: i.title,
        description: i.description.unwrap_or_default(),
        circle_id: i.circle_id,
        parent_id: i.parent_id,
        success_criteria: i.success_criteria,
        priority: i.priority,
        deadline: deadline(i.deadline.as_deref())?,
        estimated_hours: i.estimated_hours,
        tags: i.tags,
        context: json!({}),
        ..NewGoal::default()
    };
    let id = goals::create(&deps.pool, &new, &actor(&ctx))
        .await
        .map_err(goal_err)?;
    let g = goal(&deps, id).await?;
    Ok(ToolOutput::ok(format!("Goal {id} created"), g))
}

#[derive(Deserialize)]
struct UpdateInput {
    goal_id: i64,
    title: Option<String>,
    description: Option<String>,
    priority: Option<String>,
    status: Option<String>,
    progress_percent: Option<i32>,
    status_message: Option<String>,
    success_criteria: Option<String>,
    tags: Option<Vec<String>>,
}

async fn goal_update(
    deps: Arc<PlatformDeps>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: UpdateInput = parse(input)?;
    let patch = GoalPatch {
        title: i.title,
        description: i.description,
        priority: i.priority,
        status: i.status,
        progress_percent: i.progress_percent,
        status_message: i.status_message,
        success_criteria: i.success_criteria,
        tags: i.tags,
        ..GoalPatch::default()
    };
    goals::update(&deps.pool, i.goal_id, &patch, &actor(&ctx))
        .await
        .map_err(goal_err)?;
    let g = goal(&deps, i.goal_id).await?;
    Ok(ToolOutput::ok(format!("Goal {} updated", i.goal_id), g))
}

#[derive(Deserialize)]
struct ListInput {
    agent_id: Option<i64>,
    circle_id: Option<i64>,
    parent_id: Option<i64>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn goal_list(
    deps: Arc<PlatformDeps>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let filter = ListFilter {
        agent_id: i.agent_id,
        circle_id: i.circle_id,
        status: i.status,
        parent_id: i.parent_id,
        root_only: false,
        limit: i.limit.unwrap_or(50),
        offset: 0,
    };
    let (goals, total, counts) = goals::list(&deps.pool, &filter).await.map_err(goal_err)?;
    Ok(ToolOutput::ok(
        format!("{} goal(s)", goals.len()),
        json!({"goals": goals, "total": total, "counts": counts}),
    ))
}

#[derive(Deserialize)]
struct SubgoalInput {
    parent_id: i64,
    title: String,
    description: Option<String>,
    priority: Option<String>,
}

async fn goal_add_subgoal(
    deps: Arc<PlatformDeps>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SubgoalInput = parse(input)?;
    let parent = goal(&deps, i.parent_id).await?;
    let new = NewGoal {
        agent_id: parent["agent_id"].as_i64().unwrap_or_default(),
        title: i.title,
        description: i.description.unwrap_or_default(),
        circle_id: parent["circle_id"].as_i64(),
        parent_id: Some(i.parent_id),
        priority: i
            .priority
            .or_else(|| parent["priority"].as_str().map(str::to_owned)),
        context: json!({}),
        ..NewGoal::default()
    };
    let id = goals::create(&deps.pool, &new, &actor(&ctx))
        .await
        .map_err(goal_err)?;
    let g = goal(&deps, id).await?;
    Ok(ToolOutput::ok(
        format!("Subgoal {id} added under goal {}", i.parent_id),
        g,
    ))
}
