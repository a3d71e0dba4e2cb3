//! The `circles` skill over `circle.circles` and `circle.members`: create, list, get, join,
//! leave, members, update. A circle is named by id or by name (live circles have unique
//! names). `circle_message` is not here: circle messaging belongs to the circle orchestration
//! that the executor will run.

use std::sync::Arc;

use gathering_db::Pool;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{agent_or, db_err, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "circles";

fn def(name: &str, desc: &str, write: bool) -> ToolDefinition {
    let perms: &[Permission] = if write {
        &[Permission::Read, Permission::Write]
    } else {
        &[Permission::Read]
    };
    ToolDefinition::new(name, SKILL, Category::Gathering, desc)
        .permissions(perms)
        .output("circle row(s)")
}

fn circle_ref() -> Value {
    json!({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 100}]})
}

pub fn register(reg: &Registry, pool: &Pool) -> Result<(), ToolError> {
    let pool = Arc::new(pool.clone());
    reg.register(
        def("circle_create", "Create a circle", true).schema(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$"},
                "display_name": {"type": "string", "maxLength": 200},
                "description": {"type": "string", "maxLength": 5000},
                "require_review": {"type": "boolean"},
                "auto_route": {"type": "boolean"},
                "project_id": {"type": "integer", "minimum": 1},
            },
            "required": ["name"], "additionalProperties": false,
        })),
        with(pool.clone(), circle_create),
    )?;
    reg.register(
        def("circle_list", "List live circles", false).schema(json!({
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["stopped", "starting", "running", "stopping"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
            "additionalProperties": false,
        })),
        with(pool.clone(), circle_list),
    )?;
    reg.register(
        def("circle_get", "Get a circle with its members", false).schema(json!({
            "type": "object", "properties": {"circle": circle_ref()}, "required": ["circle"], "additionalProperties": false,
        })),
        with(pool.clone(), circle_get),
    )?;
    reg.register(
        def("circle_join", "Add an agent to a circle (or re-activate it)", true).schema(json!({
            "type": "object",
            "properties": {
                "circle": circle_ref(), "agent_id": {"type": "integer", "minimum": 1},
                "role": {"type": "string", "enum": ["lead", "member", "specialist", "reviewer", "observer"]},
                "competencies": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
                "can_review": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
            },
            "required": ["circle"], "additionalProperties": false,
        })),
        with(pool.clone(), circle_join),
    )?;
    reg.register(
        def("circle_leave", "Remove an agent from a circle", true).schema(json!({
            "type": "object",
            "properties": {"circle": circle_ref(), "agent_id": {"type": "integer", "minimum": 1}},
            "required": ["circle"], "additionalProperties": false,
        })),
        with(pool.clone(), circle_leave),
    )?;
    reg.register(
        def("circle_members", "Active members of a circle", false).schema(json!({
            "type": "object", "properties": {"circle": circle_ref()}, "required": ["circle"], "additionalProperties": false,
        })),
        with(pool.clone(), circle_members),
    )?;
    reg.register(
        def("circle_update", "Update a circle's settings", true).schema(json!({
            "type": "object",
            "properties": {
                "circle": circle_ref(),
                "display_name": {"type": "string", "maxLength": 200},
                "description": {"type": "string", "maxLength": 5000},
                "require_review": {"type": "boolean"},
                "auto_route": {"type": "boolean"},
                "project_id": {"type": "integer", "minimum": 1},
            },
            "required": ["circle"], "additionalProperties": false,
        })),
        with(pool, circle_update),
    )?;
    Ok(())
}

/// `(id, name)` bind values for "id = $x OR name = $y".
fn circle_key(v: &Value) -> (Option<i64>, Option<String>) {
    match v {
        Value::Number(n) => (n.as_i64(), None),
        Value::String(s) => (None, Some(s.clone())),
        _ => (None, None),
    }
}

fn circle_missing(v: &Value) -> ToolError {
    ToolError::Missing(format!(
        "Circle '{}' not found",
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    ))
}

#[derive(Deserialize)]
struct CreateInput {
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    require_review: Option<bool>,
    auto_route: Option<bool>,
    project_id: Option<i64>,
}

async fn circle_create(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CreateInput = parse(input)?;
    let client = pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO circle.circles AS c (name, display_name, description, require_review, auto_route, project_id) \
             VALUES ($1, $2, $3, COALESCE($4, true), COALESCE($5, true), $6) RETURNING to_jsonb(c)",
            &[&i.name, &i.display_name, &i.description, &i.require_review, &i.auto_route, &i.project_id],
        )
        .await
        .map_err(|e| match db_err(e) {
            ToolError::InvalidInput(_) => ToolError::InvalidInput(format!("Circle '{}' already exists", i.name)),
            other => other,
        })?;
    let circle: Value = row.get(0);
    Ok(ToolOutput::ok(
        format!("Circle '{}' created", i.name),
        circle,
    ))
}

#[derive(Deserialize)]
struct ListInput {
    status: Option<String>,
    limit: Option<i64>,
}

async fn circle_list(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT to_jsonb(c) || jsonb_build_object('member_count', \
                 (SELECT count(*) FROM circle.members m WHERE m.circle_id = c.id AND m.is_active)) \
             FROM circle.circles c WHERE c.is_active AND ($1::text IS NULL OR c.status::text = $1) \
             ORDER BY c.name LIMIT $2",
            &[&i.status, &i.limit.unwrap_or(100)],
        )
        .await
        .map_err(db_err)?;
    let circles: Vec<Value> = rows.iter().map(|r| r.get(0)).collect();
    Ok(ToolOutput::ok(
        format!("{} circle(s)", circles.len()),
        json!({"circles": circles, "total": circles.len()}),
    ))
}

#[derive(Deserialize)]
struct CircleInput {
    circle: Value,
}

async fn circle_get(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CircleInput = parse(input)?;
    let (cid, cname) = circle_key(&i.circle);
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT to_jsonb(c) || jsonb_build_object('members', COALESCE((SELECT jsonb_agg(jsonb_build_object( \
                     'agent_id', m.agent_id, 'agent_name', a.name, 'role', m.role, 'competencies', m.competencies, \
                     'can_review', m.can_review, 'joined_at', m.joined_at) ORDER BY m.joined_at) \
                 FROM circle.members m JOIN agent.agents a ON a.id = m.agent_id \
                 WHERE m.circle_id = c.id AND m.is_active), '[]'::jsonb)) \
             FROM circle.circles c WHERE c.is_active AND (c.id = $1 OR c.name = $2)",
            &[&cid, &cname],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| circle_missing(&i.circle))?;
    let circle: Value = row.get(0);
    Ok(ToolOutput::ok(format!("Circle {}", circle["name"]), circle))
}

#[derive(Deserialize)]
struct JoinInput {
    circle: Value,
    agent_id: Option<i64>,
    role: Option<String>,
    #[serde(default)]
    competencies: Vec<String>,
    #[serde(default)]
    can_review: Vec<String>,
}

async fn circle_join(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: JoinInput = parse(input)?;
    let agent = agent_or(&ctx, i.agent_id)?;
    let (cid, cname) = circle_key(&i.circle);
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO circle.members AS m (circle_id, agent_id, role, competencies, can_review) \
             SELECT c.id, $3, COALESCE($4::text::public.agent_role, 'member'), $5, $6 \
             FROM circle.circles c WHERE c.is_active AND (c.id = $1 OR c.name = $2) \
             ON CONFLICT (circle_id, agent_id) DO UPDATE SET is_active = true, left_at = NULL, \
                 role = EXCLUDED.role, competencies = EXCLUDED.competencies, can_review = EXCLUDED.can_review \
             RETURNING to_jsonb(m)",
            &[&cid, &cname, &agent, &i.role, &i.competencies, &i.can_review],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| circle_missing(&i.circle))?;
    let member: Value = row.get(0);
    Ok(ToolOutput::ok(
        format!("Agent {agent} joined the circle"),
        member,
    ))
}

#[derive(Deserialize)]
struct LeaveInput {
    circle: Value,
    agent_id: Option<i64>,
}

async fn circle_leave(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: LeaveInput = parse(input)?;
    let agent = agent_or(&ctx, i.agent_id)?;
    let (cid, cname) = circle_key(&i.circle);
    let client = pool.get().await?;
    let n = client
        .execute(
            "UPDATE circle.members m SET is_active = false, left_at = now() FROM circle.circles c \
             WHERE m.circle_id = c.id AND c.is_active AND (c.id = $1 OR c.name = $2) \
               AND m.agent_id = $3 AND m.is_active",
            &[&cid, &cname, &agent],
        )
        .await
        .map_err(db_err)?;
    if n == 0 {
        return Err(ToolError::Missing(format!(
            "agent {agent} is not an active member of that circle"
        )));
    }
    Ok(ToolOutput::ok(
        format!("Agent {agent} left the circle"),
        json!({"agent_id": agent, "left": true}),
    ))
}

async fn circle_members(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let out = circle_get(pool, ctx, input).await?;
    let members = out.data["members"].clone();
    let n = members.as_array().map_or(0, Vec::len);
    Ok(ToolOutput::ok(
        format!("{n} member(s)"),
        json!({"members": members, "total": n}),
    ))
}

#[derive(Deserialize)]
struct UpdateInput {
    circle: Value,
    display_name: Option<String>,
    description: Option<String>,
    require_review: Option<bool>,
    auto_route: Option<bool>,
    project_id: Option<i64>,
}

async fn circle_update(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: UpdateInput = parse(input)?;
    let (cid, cname) = circle_key(&i.circle);
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE circle.circles c SET display_name = COALESCE($3, display_name), \
                 description = COALESCE($4, description), require_review = COALESCE($5, require_review), \
                 auto_route = COALESCE($6, auto_route), project_id = COALESCE($7, project_id) \
             WHERE c.is_active AND (c.id = $1 OR c.name = $2) RETURNING to_jsonb(c)",
            &[&cid, &cname, &i.display_name, &i.description, &i.require_review, &i.auto_route, &i.project_id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| circle_missing(&i.circle))?;
    let circle: Value = row.get(0);
    Ok(ToolOutput::ok(
        format!("Circle {} updated", circle["name"]),
        circle,
    ))
}
