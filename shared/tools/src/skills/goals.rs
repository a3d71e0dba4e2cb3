//! The `goals` skill over `agent.goals` (contract §2.11): create, update, list, get,
//! complete, fail, add a subgoal. Lifecycle changes are written with their activity row in the
//! same statement.

use chrono::{DateTime, Utc};
use gathering_db::Pool;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{agent_or, db_err, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use std::sync::Arc;

const SKILL: &str = "goals";

fn def(name: &str, desc: &str, write: bool) -> ToolDefinition {
    let perms: &[Permission] = if write {
        &[Permission::Read, Permission::Write]
    } else {
        &[Permission::Read]
    };
    ToolDefinition::new(name, SKILL, Category::Gathering, desc)
        .permissions(perms)
        .output("goal row(s)")
}

fn priority() -> Value {
    json!({"type": "string", "enum": ["low", "medium", "high", "critical"]})
}

fn id() -> Value {
    json!({"type": "integer", "minimum": 1})
}

pub fn register(reg: &Registry, pool: &Pool) -> Result<(), ToolError> {
    let pool = Arc::new(pool.clone());
    reg.register(
        def("goal_create", "Create a goal for an agent", true).schema(json!({
            "type": "object",
            "properties": {
                "agent_id": id(), "title": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string", "maxLength": 20000}, "priority": priority(),
                "circle_id": id(), "parent_id": id(),
                "success_criteria": {"type": "string", "maxLength": 5000},
                "deadline": {"type": "string", "format": "date-time", "maxLength": 64},
                "estimated_hours": {"type": "number", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
            },
            "required": ["title"],
            "additionalProperties": false,
        })),
        with(pool.clone(), goal_create),
    )?;
    reg.register(
        def("goal_update", "Update a goal's fields, status or progress", true).schema(json!({
            "type": "object",
            "properties": {
                "goal_id": id(), "title": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string", "maxLength": 20000}, "priority": priority(),
                "status": {"type": "string", "enum": ["pending", "active", "blocked", "paused", "completed", "failed", "cancelled"]},
                "progress_percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "status_message": {"type": "string", "maxLength": 5000},
                "success_criteria": {"type": "string", "maxLength": 5000},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
            },
            "required": ["goal_id"],
            "additionalProperties": false,
        })),
        with(pool.clone(), goal_update),
    )?;
    reg.register(
        def("goal_list", "List goals", false).schema(json!({
            "type": "object",
            "properties": {
                "agent_id": id(), "circle_id": id(), "parent_id": id(),
                "status": {"type": "string", "enum": ["pending", "active", "blocked", "paused", "completed", "failed", "cancelled"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
            "additionalProperties": false,
        })),
        with(pool.clone(), goal_list),
    )?;
    reg.register(
        def("goal_get", "Get a goal with its subgoals", false).schema(json!({
            "type": "object", "properties": {"goal_id": id()}, "required": ["goal_id"], "additionalProperties": false,
        })),
        with(pool.clone(), goal_get),
    )?;
    reg.register(
        def("goal_complete", "Mark a goal completed", true).schema(json!({
            "type": "object",
            "properties": {"goal_id": id(), "result_summary": {"type": "string", "maxLength": 20000}},
            "required": ["goal_id"], "additionalProperties": false,
        })),
        with(pool.clone(), goal_complete),
    )?;
    reg.register(
        def("goal_fail", "Mark a goal failed", true).schema(json!({
            "type": "object",
            "properties": {
                "goal_id": id(), "reason": {"type": "string", "minLength": 1, "maxLength": 5000},
                "lessons_learned": {"type": "string", "maxLength": 20000},
            },
            "required": ["goal_id", "reason"], "additionalProperties": false,
        })),
        with(pool.clone(), goal_fail),
    )?;
    reg.register(
        def(
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
        with(pool, goal_add_subgoal),
    )?;
    Ok(())
}

fn actor(ctx: &CallContext) -> String {
    ctx.agent_id
        .map(|a| a.to_string())
        .unwrap_or_else(|| "user".into())
}

fn not_found(id: i64) -> ToolError {
    ToolError::Missing(format!("Goal {id} not found"))
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
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CreateInput = parse(input)?;
    let agent = agent_or(&ctx, i.agent_id)?;
    let deadline: Option<DateTime<Utc>> = i
        .deadline
        .as_deref()
        .map(|d| {
            DateTime::parse_from_rfc3339(d)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ToolError::InvalidInput(format!("deadline '{d}' is not an ISO-8601 date-time"))
                })
        })
        .transpose()?;
    let client = pool.get().await?;
    let row = client
        .query_one(
            "WITH g AS ( \
               INSERT INTO agent.goals (agent_id, title, description, priority, circle_id, parent_id, \
                   success_criteria, deadline, estimated_hours, tags, created_by) \
               VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, 'medium')::public.goal_priority, $5, $6, $7, $8, $9, $10, $11) \
               RETURNING *), \
             a AS (INSERT INTO agent.goal_activities (goal_id, activity_type, description, actor_type, actor_id) \
                   SELECT id, 'created', title, 'agent', $11 FROM g) \
             SELECT to_jsonb(g) FROM g",
            &[&agent, &i.title, &i.description, &i.priority, &i.circle_id, &i.parent_id, &i.success_criteria, &deadline, &i.estimated_hours, &i.tags, &actor(&ctx)],
        )
        .await
        .map_err(db_err)?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(format!("Goal {} created", goal["id"]), goal))
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
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: UpdateInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE agent.goals g SET title = COALESCE($2, title), description = COALESCE($3, description), \
                 priority = COALESCE($4::text::public.goal_priority, priority), \
                 status = COALESCE($5::text::public.goal_status, status), \
                 progress_percent = COALESCE($6, progress_percent), status_message = COALESCE($7, status_message), \
                 success_criteria = COALESCE($8, success_criteria), tags = COALESCE($9, tags) \
             WHERE id = $1 RETURNING to_jsonb(g)",
            &[&i.goal_id, &i.title, &i.description, &i.priority, &i.status, &i.progress_percent, &i.status_message, &i.success_criteria, &i.tags],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(i.goal_id))?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(format!("Goal {} updated", i.goal_id), goal))
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
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT to_jsonb(g) FROM agent.goals g \
             WHERE ($1::bigint IS NULL OR g.agent_id = $1) AND ($2::bigint IS NULL OR g.circle_id = $2) \
               AND ($3::bigint IS NULL OR g.parent_id = $3) AND ($4::text IS NULL OR g.status::text = $4) \
             ORDER BY g.created_at DESC, g.id DESC LIMIT $5",
            &[&i.agent_id, &i.circle_id, &i.parent_id, &i.status, &i.limit.unwrap_or(50)],
        )
        .await
        .map_err(db_err)?;
    let goals: Vec<Value> = rows.iter().map(|r| r.get(0)).collect();
    Ok(ToolOutput::ok(
        format!("{} goal(s)", goals.len()),
        json!({"goals": goals, "total": goals.len()}),
    ))
}

#[derive(Deserialize)]
struct IdInput {
    goal_id: i64,
}

async fn goal_get(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: IdInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT to_jsonb(g) || jsonb_build_object('subgoals', COALESCE( \
                 (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.id) FROM agent.goals s WHERE s.parent_id = g.id), '[]'::jsonb)) \
             FROM agent.goals g WHERE g.id = $1",
            &[&i.goal_id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(i.goal_id))?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(format!("Goal {}", i.goal_id), goal))
}

#[derive(Deserialize)]
struct CompleteInput {
    goal_id: i64,
    result_summary: Option<String>,
}

async fn goal_complete(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CompleteInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "WITH g AS ( \
               UPDATE agent.goals SET status = 'completed', progress_percent = 100, completed_at = now(), \
                   result_summary = COALESCE($2, result_summary) \
               WHERE id = $1 AND status <> 'cancelled' RETURNING *), \
             a AS (INSERT INTO agent.goal_activities (goal_id, activity_type, description, actor_type, actor_id) \
                   SELECT id, 'completed', $2, 'agent', $3 FROM g) \
             SELECT to_jsonb(g) FROM g",
            &[&i.goal_id, &i.result_summary, &actor(&ctx)],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| ToolError::Missing(format!("Goal {} not found or cancelled", i.goal_id)))?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(
        format!("Goal {} completed", i.goal_id),
        goal,
    ))
}

#[derive(Deserialize)]
struct FailInput {
    goal_id: i64,
    reason: String,
    lessons_learned: Option<String>,
}

async fn goal_fail(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: FailInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "WITH g AS ( \
               UPDATE agent.goals SET status = 'failed', status_message = $2, completed_at = now(), \
                   lessons_learned = COALESCE($3, lessons_learned) \
               WHERE id = $1 RETURNING *), \
             a AS (INSERT INTO agent.goal_activities (goal_id, activity_type, description, actor_type, actor_id) \
                   SELECT id, 'failed', $2, 'agent', $4 FROM g) \
             SELECT to_jsonb(g) FROM g",
            &[&i.goal_id, &i.reason, &i.lessons_learned, &actor(&ctx)],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(i.goal_id))?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(format!("Goal {} failed", i.goal_id), goal))
}

#[derive(Deserialize)]
struct SubgoalInput {
    parent_id: i64,
    title: String,
    description: Option<String>,
    priority: Option<String>,
}

async fn goal_add_subgoal(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SubgoalInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "WITH g AS ( \
               INSERT INTO agent.goals (agent_id, circle_id, parent_id, title, description, priority, created_by) \
               SELECT p.agent_id, p.circle_id, p.id, $2, COALESCE($3, ''), \
                      COALESCE($4::text::public.goal_priority, p.priority), $5 \
               FROM agent.goals p WHERE p.id = $1 RETURNING *), \
             a AS (INSERT INTO agent.goal_activities (goal_id, activity_type, description, actor_type, actor_id) \
                   SELECT parent_id, 'subgoal_added', title, 'agent', $5 FROM g) \
             SELECT to_jsonb(g) FROM g",
            &[&i.parent_id, &i.title, &i.description, &i.priority, &actor(&ctx)],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(i.parent_id))?;
    let goal: Value = row.get(0);
    Ok(ToolOutput::ok(
        format!("Subgoal {} added under goal {}", goal["id"], i.parent_id),
        goal,
    ))
}
