//! The `projects` skill over `project.projects` (through [`crate::project::store`]): list,
//! get, context, notes, conventions, commands, key files, update. The project defaults to the
//! one the call runs in.

use std::sync::Arc;

use gathering_db::Pool;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::project::store::{self, MapField, ProjectPatch};
use crate::project::{Project, ProjectError};
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "projects";

impl From<ProjectError> for ToolError {
    fn from(e: ProjectError) -> Self {
        match e {
            ProjectError::NotFound(_) | ProjectError::Missing(_) => {
                ToolError::Missing(e.to_string())
            }
            ProjectError::Invalid(m) | ProjectError::Conflict(m) => ToolError::InvalidInput(m),
            ProjectError::Forbidden(m) => ToolError::Refused(m),
            ProjectError::Db(m) => ToolError::Db(m),
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Note,
    RemoveNote,
    Map(MapField),
}

pub fn register(reg: &Registry, pool: &Pool) -> Result<(), ToolError> {
    let pool = Arc::new(pool.clone());
    let id = json!({"type": "integer", "minimum": 1});
    let def = |name: &str, desc: &str, write: bool| {
        let perms: &[Permission] = if write {
            &[Permission::Read, Permission::Write]
        } else {
            &[Permission::Read]
        };
        ToolDefinition::new(name, SKILL, Category::Gathering, desc)
            .permissions(perms)
            .output("project")
    };
    let only_id =
        json!({"type": "object", "properties": {"project_id": id}, "additionalProperties": false});
    reg.register(
        def("project_list", "List projects", false).schema(json!({
            "type": "object", "properties": {"status": {"type": "string", "maxLength": 50}}, "additionalProperties": false,
        })),
        with(pool.clone(), project_list),
    )?;
    reg.register(
        def("project_get", "Get a project", false).schema(only_id.clone()),
        with(pool.clone(), project_get),
    )?;
    reg.register(
        def("project_context", "A project as prompt context", false).schema(only_id),
        with(pool.clone(), project_context),
    )?;
    let text = |name: &str, max: u64| json!({"type": "object", "properties": {"project_id": id, name: {"type": "string", "minLength": 1, "maxLength": max}}, "required": [name], "additionalProperties": false});
    let kv = |k: &str, v: &str| {
        json!({
            "type": "object",
            "properties": {"project_id": id, k: {"type": "string", "minLength": 1, "maxLength": 200}, v: {"type": "string", "maxLength": 5000}},
            "required": [k, v], "additionalProperties": false,
        })
    };
    for (name, desc, schema, op, key, val) in [
        (
            "project_add_note",
            "Add a note to a project",
            text("note", 5000),
            Op::Note,
            "note",
            "",
        ),
        (
            "project_remove_note",
            "Remove a note from a project",
            text("note", 5000),
            Op::RemoveNote,
            "note",
            "",
        ),
        (
            "project_add_convention",
            "Set a coding convention of a project",
            kv("key", "value"),
            Op::Map(MapField::Conventions),
            "key",
            "value",
        ),
        (
            "project_add_command",
            "Set a named command of a project (test, build, …)",
            kv("name", "command"),
            Op::Map(MapField::Commands),
            "name",
            "command",
        ),
        (
            "project_add_key_file",
            "Record a key file of a project",
            kv("path", "description"),
            Op::Map(MapField::KeyFiles),
            "path",
            "description",
        ),
    ] {
        reg.register(
            def(name, desc, true).schema(schema),
            with(pool.clone(), move |pool, ctx, input| {
                edit(pool, ctx, input, op, key, val)
            }),
        )?;
    }
    reg.register(
        def("project_update", "Update a project's description, status, venv, tools, conventions, commands or notes", true).schema(json!({
            "type": "object",
            "properties": {
                "project_id": id,
                "display_name": {"type": "string", "maxLength": 200},
                "description": {"type": "string", "maxLength": 20000},
                "status": {"type": "string", "minLength": 1, "maxLength": 50},
                "venv_path": {"type": "string", "maxLength": 4096},
                "python_version": {"type": "string", "maxLength": 50},
                "tools": {"type": "object"}, "conventions": {"type": "object"},
                "key_files": {"type": "object"}, "commands": {"type": "object"},
                "notes": {"type": "array", "items": {"type": "string", "maxLength": 5000}, "maxItems": 200},
            },
            "additionalProperties": false,
        })),
        with(pool, project_update),
    )?;
    Ok(())
}

fn project_id(ctx: &CallContext, input: &Value) -> Result<i64, ToolError> {
    input
        .get("project_id")
        .and_then(Value::as_i64)
        .or_else(|| ctx.project.as_ref().and_then(|p| p.id()))
        .ok_or_else(|| {
            ToolError::InvalidInput("project_id is required (the call runs in no project)".into())
        })
}

fn found(p: Option<Project>, id: i64) -> Result<Project, ToolError> {
    p.ok_or_else(|| ToolError::Missing(format!("Project {id} not found")))
}

#[derive(Deserialize)]
struct ListInput {
    status: Option<String>,
}

async fn project_list(
    pool: Arc<Pool>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let client = pool.get().await?;
    let projects: Vec<Value> = store::list(&client, i.status.as_deref())
        .await?
        .iter()
        .map(Project::to_json)
        .collect();
    Ok(ToolOutput::ok(
        format!("{} project(s)", projects.len()),
        json!({"projects": projects, "total": projects.len()}),
    ))
}

async fn project_get(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let id = project_id(&ctx, &input)?;
    let client = pool.get().await?;
    let p = found(store::get(&client, id).await?, id)?;
    Ok(ToolOutput::ok(format!("Project {}", p.name), p.to_json()))
}

async fn project_context(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let id = project_id(&ctx, &input)?;
    let client = pool.get().await?;
    let p = found(store::get(&client, id).await?, id)?;
    Ok(ToolOutput::ok(
        format!("Context of project {}", p.name),
        json!({"project_id": p.id, "project_name": p.name, "prompt_context": p.prompt_context()}),
    ))
}

async fn edit(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
    op: Op,
    key: &'static str,
    val: &'static str,
) -> Result<ToolOutput, ToolError> {
    let id = project_id(&ctx, &input)?;
    let k = input
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let client = pool.get().await?;
    let p = match op {
        Op::Note => store::add_note(&client, id, &k).await?,
        Op::RemoveNote => store::remove_note(&client, id, &k).await?,
        Op::Map(field) => {
            let v = input.get(val).cloned().unwrap_or(Value::Null);
            store::set_entry(&client, id, field, &k, &v).await?
        }
    };
    let p = found(p, id)?;
    Ok(ToolOutput::ok(
        format!("Project {} updated", p.name),
        p.to_json(),
    ))
}

async fn project_update(
    pool: Arc<Pool>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let id = project_id(&ctx, &input)?;
    let mut patch_input = input;
    if let Some(o) = patch_input.as_object_mut() {
        o.remove("project_id");
    }
    let patch: ProjectPatch = parse(patch_input)?;
    let client = pool.get().await?;
    let p = found(store::update(&client, id, &patch).await?, id)?;
    Ok(ToolOutput::ok(
        format!("Project {} updated", p.name),
        p.to_json(),
    ))
}
