//! `execute_pipeline` actions: the node's attempt starts a run of another pipeline (a
//! sub-run, one per attempt: a resumed attempt finds the one it started) and completes when
//! that run completes, with its outputs. The parent does not hold a worker meanwhile: the node
//! waits like a delay and checks the sub-run at growing intervals. Nesting is limited.

use gathering_pipeline::store;
use gathering_pipeline::subrun::{self, NewSubRun};
use gathering_queue::enqueue_in;
use serde_json::{Map, Value, json};

use super::{Call, NodeError, Progress};
use crate::jobs::pipelines::Services;

/// Deepest nesting of sub-runs.
pub const MAX_DEPTH: i32 = 5;

const CHILD_STATUS_SQL: &str = "
SELECT r.status, r.error_message,
       COALESCE((SELECT jsonb_object_agg(n.node_id, n.output_data)
                 FROM circle.pipeline_node_runs n
                 WHERE n.run_id = r.id AND n.status = 'completed'), '{}') AS outputs
FROM circle.pipeline_runs r WHERE r.id = $1";

fn db(call: &Call, e: impl std::fmt::Display) -> NodeError {
    NodeError::transient(format!(
        "Action node '{}': sub-pipeline storage failed: {e}",
        call.node.id
    ))
}

fn target(call: &Call) -> Result<i64, NodeError> {
    match call.config.get("pipeline_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        NodeError::config(format!(
            "Action node '{}' with action 'execute_pipeline' needs a numeric 'pipeline_id'",
            call.node.id
        ))
    })
}

pub async fn step(services: &Services, call: &Call) -> Result<Progress, NodeError> {
    match call.child_run_id {
        None => start(services, call).await.map(Progress::ChildStarted),
        Some(child) => check(services, call, child).await,
    }
}

async fn start(services: &Services, call: &Call) -> Result<i64, NodeError> {
    let pipeline_id = target(call)?;
    if call.depth + 1 > MAX_DEPTH {
        return Err(NodeError::config(format!(
            "Action node '{}': sub-pipelines nest at most {MAX_DEPTH} levels deep",
            call.node.id
        )));
    }
    let trigger_data = match call.config.get("trigger_data") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(call.inputs.clone()),
    };
    let mut client = services.pool.get().await.map_err(|e| db(call, e))?;
    let tx = client.transaction().await.map_err(|e| db(call, e))?;
    let pipeline = store::get_pipeline(&tx, pipeline_id)
        .await
        .map_err(|e| db(call, e))?
        .ok_or_else(|| NodeError::config(format!("Pipeline {pipeline_id} not found")))?;
    if pipeline.status != "active" {
        return Err(NodeError::config(format!(
            "Cannot run pipeline {pipeline_id} in '{}' status. Activate it first.",
            pipeline.status
        )));
    }
    let def = pipeline.definition().map_err(|e| {
        NodeError::config(format!(
            "Pipeline {pipeline_id} does not parse: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let errors = gathering_pipeline::validate(&def);
    if !errors.is_empty() {
        return Err(NodeError::config(format!(
            "Pipeline {pipeline_id} validation failed: {}",
            errors.join("; ")
        )));
    }
    let attempt = call.attempt as i32;
    let inserted = subrun::insert(
        &tx,
        &NewSubRun {
            pipeline: &pipeline,
            definition: &def,
            trigger_data: &trigger_data,
            parent_run_id: call.run_id,
            parent_node_id: &call.node.id,
            parent_attempt: attempt,
            depth: call.depth + 1,
        },
    )
    .await
    .map_err(|e| db(call, e))?;
    let id: i64 = match inserted {
        Some(id) => {
            store::insert_node_rows(&tx, id, &def)
                .await
                .map_err(|e| db(call, e))?;
            enqueue_in(&tx, &store::run_job(id))
                .await
                .map_err(|e| db(call, e))?;
            id
        }
        None => subrun::find(&tx, call.run_id, &call.node.id, attempt)
            .await
            .map_err(|e| db(call, e))?,
    };
    tx.commit().await.map_err(|e| db(call, e))?;
    Ok(id)
}

async fn check(services: &Services, call: &Call, child: i64) -> Result<Progress, NodeError> {
    let client = services.pool.get().await.map_err(|e| db(call, e))?;
    let row = client
        .query_opt(CHILD_STATUS_SQL, &[&child])
        .await
        .map_err(|e| db(call, e))?
        .ok_or_else(|| {
            NodeError::execution(format!("Sub-pipeline run {child} no longer exists"))
        })?;
    let status: String = row.try_get(0).map_err(|e| db(call, e))?;
    let error: Option<String> = row.try_get(1).map_err(|e| db(call, e))?;
    let outputs: Value = row.try_get(2).map_err(|e| db(call, e))?;
    match status.as_str() {
        "pending" | "running" | "waiting_approval" => Ok(Progress::ChildRunning),
        "completed" => Ok(Progress::Done(json!({
            "action": "execute_pipeline",
            "executed": true,
            "pipeline_id": call.config.get("pipeline_id"),
            "run_id": child,
            "status": status,
            "outputs": if outputs.is_object() { outputs } else { Value::Object(Map::new()) },
        }))),
        other => Err(NodeError::execution(format!(
            "Sub-pipeline run {child} {other}: {}",
            error.unwrap_or_default()
        ))),
    }
}
