//! The `pipelines` skill: list and inspect pipelines, start a run (executed by the executors)
//! and read its runs.

use std::sync::Arc;

use gathering_pipeline::PipelineError;
use gathering_pipeline::store;
use gathering_tools::{Category, Permission, Registry, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::json;

use super::{PlatformDeps, db, def, id, parse, with};

const SKILL: &str = "pipelines";

fn pipe_err(e: PipelineError) -> ToolError {
    match e {
        PipelineError::NotFound | PipelineError::RunNotFound => ToolError::Missing(e.to_string()),
        PipelineError::NotActive(_) | PipelineError::NotCancellable(_) => {
            ToolError::InvalidInput(e.to_string())
        }
        other => db(other),
    }
}

#[derive(Deserialize)]
struct ById {
    pipeline_id: i64,
}

pub fn register(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    let read = &[Permission::Read];
    let write = &[Permission::Read, Permission::Write];
    let by_id = json!({"type": "object", "properties": {"pipeline_id": id()}, "required": ["pipeline_id"], "additionalProperties": false});
    reg.register(
        def("pipeline_list", SKILL, Category::Gathering, "List pipelines", read).schema(json!({
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["active", "paused", "draft"]}, "limit": {"type": "integer", "minimum": 1, "maximum": 200}},
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                status: Option<String>,
                limit: Option<i64>,
            }
            let i: In = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let (rows, counts) = store::list_pipelines(&c, i.status.as_deref(), i.limit.unwrap_or(50)).await.map_err(pipe_err)?;
            let list: Vec<_> = rows.iter().map(|p| p.to_json()).collect();
            Ok(ToolOutput::ok(format!("{} pipeline(s)", list.len()), json!({"pipelines": list, "counts": counts})))
        }),
    )?;
    reg.register(
        def(
            "pipeline_get",
            SKILL,
            Category::Gathering,
            "A pipeline with its nodes and edges",
            read,
        )
        .schema(by_id.clone()),
        with(deps, |deps, _ctx, input| async move {
            let i: ById = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let p = store::get_pipeline(&c, i.pipeline_id)
                .await
                .map_err(pipe_err)?
                .ok_or_else(|| pipe_err(PipelineError::NotFound))?;
            Ok(ToolOutput::ok("pipeline", p.to_json()))
        }),
    )?;
    reg.register(
        def(
            "pipeline_run",
            SKILL,
            Category::Gathering,
            "Start a run of an active pipeline; executors run it",
            write,
        )
        .schema(json!({
            "type": "object",
            "properties": {"pipeline_id": id(), "trigger_data": {"type": "object"}},
            "required": ["pipeline_id"],
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                pipeline_id: i64,
                trigger_data: Option<serde_json::Value>,
            }
            let i: In = parse(input)?;
            let mut c = deps.pool.get().await.map_err(db)?;
            let run = store::start_run(
                &mut c,
                i.pipeline_id,
                &i.trigger_data.unwrap_or_else(|| json!({})),
            )
            .await
            .map_err(pipe_err)?;
            Ok(ToolOutput::ok("run started", run.to_json(None)))
        }),
    )?;
    reg.register(
        def("pipeline_runs", SKILL, Category::Gathering, "The latest runs of a pipeline", read).schema(json!({
            "type": "object",
            "properties": {"pipeline_id": id(), "limit": {"type": "integer", "minimum": 1, "maximum": 100}},
            "required": ["pipeline_id"],
            "additionalProperties": false,
        })),
        with(deps, |deps, _ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                pipeline_id: i64,
                limit: Option<i64>,
            }
            let i: In = parse(input)?;
            let c = deps.pool.get().await.map_err(db)?;
            let runs = store::list_runs(&c, i.pipeline_id, None, i.limit.unwrap_or(20)).await.map_err(pipe_err)?;
            let list: Vec<_> = runs.iter().map(|(r, nodes)| r.to_json(Some(nodes))).collect();
            Ok(ToolOutput::ok(format!("{} run(s)", list.len()), json!({"runs": list})))
        }),
    )?;
    Ok(())
}
