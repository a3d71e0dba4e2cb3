//! The pipeline events of the event log (`pipeline_run.*`, `pipeline_node.*`), with their
//! topics: `pipelines`, `pipelines:{pipeline_id}` and `pipeline_runs:{run_id}`, so a WebSocket
//! client can follow every pipeline, one pipeline or one run.

use gathering_events::NewEvent;
use serde_json::{Value, json};

pub const RUN_STARTED: &str = "pipeline_run.started";
pub const RUN_COMPLETED: &str = "pipeline_run.completed";
pub const RUN_FAILED: &str = "pipeline_run.failed";
pub const RUN_CANCELLED: &str = "pipeline_run.cancelled";
pub const RUN_TIMEOUT: &str = "pipeline_run.timeout";
/// Every node left to do waits for a person (the run holds no worker).
pub const RUN_WAITING: &str = "pipeline_run.waiting_approval";
pub const NODE_STARTED: &str = "pipeline_node.started";
pub const NODE_COMPLETED: &str = "pipeline_node.completed";
pub const NODE_FAILED: &str = "pipeline_node.failed";
pub const NODE_SKIPPED: &str = "pipeline_node.skipped";
pub const NODE_RETRYING: &str = "pipeline_node.retrying";

const SOURCE: &str = "pipelines";

fn event(kind: &str, pipeline_id: i64, run_id: i64, payload: Value) -> NewEvent {
    NewEvent::new(kind, payload)
        .topic("pipelines")
        .topic(format!("pipelines:{pipeline_id}"))
        .topic(format!("pipeline_runs:{run_id}"))
        .source(SOURCE)
}

/// The run event for a final (or started) status.
pub fn run_event(pipeline_id: i64, run_id: i64, status: &str, error: Option<&str>) -> NewEvent {
    let kind = match status {
        "running" => RUN_STARTED,
        "completed" => RUN_COMPLETED,
        "cancelled" => RUN_CANCELLED,
        "timeout" => RUN_TIMEOUT,
        "waiting_approval" => RUN_WAITING,
        _ => RUN_FAILED,
    };
    event(
        kind,
        pipeline_id,
        run_id,
        json!({"pipeline_id": pipeline_id, "run_id": run_id, "status": status, "error": error}),
    )
}

/// A node event; `detail` adds fields (attempt, error, duration_ms…).
pub fn node_event(
    kind: &str,
    pipeline_id: i64,
    run_id: i64,
    node_id: &str,
    node_type: &str,
    detail: Value,
) -> NewEvent {
    let mut payload = json!({
        "pipeline_id": pipeline_id,
        "run_id": run_id,
        "node_id": node_id,
        "node_type": node_type,
    });
    if let (Some(p), Value::Object(d)) = (payload.as_object_mut(), detail) {
        p.extend(d);
    }
    event(kind, pipeline_id, run_id, payload)
}
