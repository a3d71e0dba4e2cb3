//! The agents' `circles` skill: create, list, get, join, leave, members and update circles,
//! and create and list circle tasks. It lives here, not in the tools crate, so agents go
//! through the same rules as the API (a member joining routes waiting tasks, a task is routed
//! and admitted, events are published); the edge and the executor register it at start, like
//! the other platform skills.

use std::future::Future;
use std::sync::Arc;

use gathering_tools::{
    CallContext, Category, Permission, Registry, Tool, ToolDefinition, ToolError, ToolOutput,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::circles::{self, CirclePatch, NewCircle, NewMember};
use crate::error::CircleError;
use crate::{Circles, input, tasks};

const SKILL: &str = "circles";

fn def(name: &str, desc: &str, write: bool) -> ToolDefinition {
    let perms: &[Permission] = if write {
        &[Permission::Read, Permission::Write]
    } else {
        &[Permission::Read]
    };
    ToolDefinition::new(name, SKILL, Category::Gathering, desc)
        .permissions(perms)
        .output("circle or task row(s)")
}

fn circle_ref() -> Value {
    json!({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 100}]})
}

fn labels() -> Value {
    json!({"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50})
}

fn err(e: CircleError) -> ToolError {
    match e {
        CircleError::CircleNotFound(_)
        | CircleError::TaskNotFound(_)
        | CircleError::AgentNotFound(_)
        | CircleError::ConversationNotFound(_)
        | CircleError::ConflictNotFound(_)
        | CircleError::Missing(_) => ToolError::Missing(e.to_string()),
        CircleError::Invalid(v) => ToolError::InvalidInput(
            v.iter()
                .map(|x| format!("{}: {}", x.field, x.msg))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        CircleError::Exists(_) | CircleError::BadRequest(_) | CircleError::Limit(_) => {
            ToolError::InvalidInput(e.to_string())
        }
        other => ToolError::Db(other.to_string()),
    }
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ToolError> {
    serde_json::from_value(input)
        .map_err(|e| ToolError::InvalidInput(format!("invalid input: {e}")))
}

fn with<F, Fut>(circles: &Arc<Circles>, f: F) -> impl Tool
where
    F: Fn(Arc<Circles>, CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    let circles = circles.clone();
    move |ctx: CallContext, input: Value| f(circles.clone(), ctx, input)
}

/// The live circle's name a reference (id or name) designates.
async fn name_of(circles: &Circles, r: &Value) -> Result<String, ToolError> {
    match r {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => {
            let id = n.as_i64().unwrap_or_default();
            let c = circles
                .pool
                .get()
                .await
                .map_err(|e| ToolError::Db(e.to_string()))?;
            let row = c
                .query_opt(
                    "SELECT name FROM circle.circles WHERE id = $1 AND is_active",
                    &[&id],
                )
                .await
                .map_err(|e| ToolError::Db(e.to_string()))?
                .ok_or_else(|| ToolError::Missing(format!("Circle '{id}' not found")))?;
            row.try_get("name")
                .map_err(|e| ToolError::Db(e.to_string()))
        }
        other => Err(ToolError::InvalidInput(format!("not a circle: {other}"))),
    }
}

fn agent_or(ctx: &CallContext, given: Option<i64>) -> Result<i64, ToolError> {
    given
        .or(ctx.agent_id)
        .ok_or_else(|| ToolError::InvalidInput("agent_id is required (no calling agent)".into()))
}

fn label_list(items: &[String]) -> Result<Vec<String>, ToolError> {
    input::labels(items).map_err(ToolError::InvalidInput)
}

/// Registers the skill's tools, one function each, in the order the registry lists them.
pub fn register(reg: &Registry, circles: Circles) -> Result<(), ToolError> {
    let c = Arc::new(circles);
    register_circle_create(reg, &c)?;
    register_circle_list(reg, &c)?;
    register_circle_get(reg, &c)?;
    register_circle_update(reg, &c)?;
    register_circle_join(reg, &c)?;
    register_circle_leave(reg, &c)?;
    register_circle_members(reg, &c)?;
    register_circle_task_create(reg, &c)?;
    register_circle_tasks(reg, &c)
}

#[derive(Deserialize)]
struct CircleIn {
    circle: Value,
}

fn register_circle_create(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
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
        with(c, |c, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                name: String,
                display_name: Option<String>,
                description: Option<String>,
                require_review: Option<bool>,
                auto_route: Option<bool>,
                project_id: Option<i64>,
            }
            let i: In = parse(input)?;
            let new = NewCircle {
                name: input::circle_name(&i.name).map_err(ToolError::InvalidInput)?,
                display_name: i.display_name,
                description: i.description,
                require_review: i.require_review.unwrap_or(true),
                auto_route: i.auto_route.unwrap_or(true),
                max_concurrent_tasks: 5,
                project_id: i.project_id,
                max_review_rounds: None,
                owner: ctx.agent_id.map(|a| format!("agent:{a}")),
            };
            let out = circles::create(&c, &new).await.map_err(err)?;
            Ok(ToolOutput::ok(
                format!("Circle '{}' created", new.name),
                out,
            ))
        }),
    )
}

fn register_circle_list(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_list", "List live circles", false).schema(json!({
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["stopped", "starting", "running", "stopping"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
            "additionalProperties": false,
        })),
        with(c, |c, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                status: Option<String>,
                limit: Option<usize>,
            }
            let i: In = parse(input)?;
            let client = c.pool.get().await.map_err(|e| ToolError::Db(e.to_string()))?;
            let all = circles::list(&client).await.map_err(err)?;
            let circles: Vec<Value> = all
                .into_iter()
                .filter(|x| i.status.as_deref().is_none_or(|s| x["status"] == s))
                .take(i.limit.unwrap_or(100))
                .collect();
            Ok(ToolOutput::ok(
                format!("{} circle(s)", circles.len()),
                json!({"circles": circles, "total": circles.len()}),
            ))
        }),
    )
}

fn register_circle_get(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_get", "Get a circle with its members", false).schema(json!({
            "type": "object", "properties": {"circle": circle_ref()}, "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, _ctx, input| async move {
            let i: CircleIn = parse(input)?;
            let name = name_of(&c, &i.circle).await?;
            let client = c.pool.get().await.map_err(|e| ToolError::Db(e.to_string()))?;
            let mut out = circles::detail(&client, &name).await.map_err(err)?;
            out["members"] = out["agents"].clone();
            Ok(ToolOutput::ok(format!("Circle {name}"), out))
        }),
    )
}

fn register_circle_update(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
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
                "max_concurrent_tasks": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                circle: Value,
                display_name: Option<String>,
                description: Option<String>,
                require_review: Option<bool>,
                auto_route: Option<bool>,
                project_id: Option<i64>,
                max_concurrent_tasks: Option<i32>,
            }
            let i: In = parse(input)?;
            let name = name_of(&c, &i.circle).await?;
            let patch = CirclePatch {
                display_name: i.display_name,
                description: i.description,
                require_review: i.require_review,
                auto_route: i.auto_route,
                project_id: i.project_id,
                max_concurrent_tasks: i.max_concurrent_tasks,
            };
            let out = circles::update(&c, &name, &patch).await.map_err(err)?;
            Ok(ToolOutput::ok(format!("Circle {name} updated"), out))
        }),
    )
}

fn register_circle_join(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_join", "Add an agent to a circle (or update its competencies)", true).schema(json!({
            "type": "object",
            "properties": {
                "circle": circle_ref(), "agent_id": {"type": "integer", "minimum": 1},
                "role": {"type": "string", "enum": ["lead", "member", "specialist", "reviewer", "observer"]},
                "competencies": labels(),
                "can_review": labels(),
            },
            "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                circle: Value,
                agent_id: Option<i64>,
                role: Option<String>,
                #[serde(default)]
                competencies: Vec<String>,
                #[serde(default)]
                can_review: Vec<String>,
            }
            let i: In = parse(input)?;
            let agent = agent_or(&ctx, i.agent_id)?;
            let name = name_of(&c, &i.circle).await?;
            let member = NewMember {
                agent_id: agent,
                role: i.role,
                competencies: label_list(&i.competencies)?,
                can_review: label_list(&i.can_review)?,
            };
            circles::add_member(&c, &name, &member, true).await.map_err(err)?;
            Ok(ToolOutput::ok(
                format!("Agent {agent} joined the circle"),
                json!({"circle": name, "agent_id": agent, "competencies": member.competencies,
                       "can_review": member.can_review}),
            ))
        }),
    )
}

fn register_circle_leave(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_leave", "Remove an agent from a circle", true).schema(json!({
            "type": "object",
            "properties": {"circle": circle_ref(), "agent_id": {"type": "integer", "minimum": 1}},
            "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                circle: Value,
                agent_id: Option<i64>,
            }
            let i: In = parse(input)?;
            let agent = agent_or(&ctx, i.agent_id)?;
            let name = name_of(&c, &i.circle).await?;
            circles::remove_member(&c, &name, agent)
                .await
                .map_err(err)?;
            Ok(ToolOutput::ok(
                format!("Agent {agent} left the circle"),
                json!({"agent_id": agent, "left": true}),
            ))
        }),
    )
}

fn register_circle_members(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_members", "Active members of a circle", false).schema(json!({
            "type": "object", "properties": {"circle": circle_ref()}, "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, _ctx, input| async move {
            let i: CircleIn = parse(input)?;
            let name = name_of(&c, &i.circle).await?;
            let client = c.pool.get().await.map_err(|e| ToolError::Db(e.to_string()))?;
            let circle = circles::find(&client, &name).await.map_err(err)?;
            let members = circles::members(&client, circle.id).await.map_err(err)?;
            Ok(ToolOutput::ok(
                format!("{} member(s)", members.len()),
                json!({"members": members, "total": members.len()}),
            ))
        }),
    )
}

fn register_circle_task_create(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_task_create", "Create a task in a running circle (routed to a member)", true).schema(json!({
            "type": "object",
            "properties": {
                "circle": circle_ref(),
                "title": {"type": "string", "minLength": 1, "maxLength": input::MAX_TITLE},
                "description": {"type": "string", "maxLength": input::MAX_DESCRIPTION},
                "required_competencies": labels(),
                "priority": {"type": "integer", "minimum": 1, "maximum": 10},
                "resources": {"type": "array", "items": {"type": "string", "maxLength": input::MAX_PATH}, "maxItems": input::MAX_LIST},
            },
            "required": ["circle", "title"], "additionalProperties": false,
        })),
        with(c, |c, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                circle: Value,
                title: String,
                #[serde(default)]
                description: String,
                #[serde(default)]
                required_competencies: Vec<String>,
                priority: Option<i16>,
                #[serde(default)]
                resources: Vec<String>,
            }
            let i: In = parse(input)?;
            let name = name_of(&c, &i.circle).await?;
            let new = tasks::NewTask {
                title: i.title.trim().to_owned(),
                description: i.description,
                required_competencies: label_list(&i.required_competencies)?,
                priority: i.priority.unwrap_or(5),
                assigned_agent_id: None,
                resources: input::paths(&i.resources, input::MAX_LIST).map_err(ToolError::InvalidInput)?,
                created_by_user: None,
                created_by_agent: ctx.agent_id,
            };
            let task = tasks::create(&c, &name, &new).await.map_err(err)?;
            Ok(ToolOutput::ok(format!("Task {} created", task["id"]), task))
        }),
    )
}

fn register_circle_tasks(reg: &Registry, c: &Arc<Circles>) -> Result<(), ToolError> {
    reg.register(
        def("circle_tasks", "Tasks of a circle", false).schema(json!({
            "type": "object",
            "properties": {
                "circle": circle_ref(),
                "status": {"type": "string", "enum": input::TASK_STATUSES},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            },
            "required": ["circle"], "additionalProperties": false,
        })),
        with(c, |c, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                circle: Value,
                status: Option<String>,
                limit: Option<i64>,
            }
            let i: In = parse(input)?;
            let name = name_of(&c, &i.circle).await?;
            let (tasks, total) = tasks::list(&c, &name, i.status.as_deref(), i.limit.unwrap_or(50))
                .await
                .map_err(err)?;
            Ok(ToolOutput::ok(
                format!("{} task(s)", tasks.len()),
                json!({"tasks": tasks, "total": total}),
            ))
        }),
    )
}
