//! Pipelines, runs and node runs as read from their tables, and their contract JSON (§2.14,
//! §5). A run's `logs` are built from its node runs, one entry per node that started or was
//! decided, carrying both field sets the contract asks for: the `NodeExecutionResult` fields
//! (`node_id, status, output, error, duration_ms, retry_count`) and the dashboard's log line
//! (`timestamp, node_id, message, level`).

use chrono::{DateTime, Utc};
use gathering_db::tokio_postgres::{Error as PgError, Row};
use serde_json::{Value, json};

use crate::model::{Definition, ParseError, Settings, parse_definition};

fn iso(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// Columns of `circle.pipelines` every query selects (a macro, so that statements stay
/// static strings built with `concat!`).
macro_rules! pipeline_columns {
    () => {
        "id, name, description, status, nodes, edges, created_at, updated_at, last_run, run_count, success_count, error_count, timeout_seconds, max_retries_per_node, retry_backoff_base, retry_backoff_max"
    };
}
pub(crate) use pipeline_columns;

#[derive(Debug, Clone)]
pub struct PipelineRow {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub status: String,
    pub nodes: Value,
    pub edges: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_run: Option<DateTime<Utc>>,
    pub run_count: i32,
    pub success_count: i32,
    pub error_count: i32,
    pub settings: Settings,
}

impl PipelineRow {
    pub fn from_row(r: &Row) -> Result<Self, PgError> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            status: r.try_get("status")?,
            nodes: r.try_get("nodes")?,
            edges: r.try_get("edges")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            last_run: r.try_get("last_run")?,
            run_count: r.try_get("run_count")?,
            success_count: r.try_get("success_count")?,
            error_count: r.try_get("error_count")?,
            settings: Settings {
                timeout_seconds: r.try_get("timeout_seconds")?,
                max_retries_per_node: r.try_get("max_retries_per_node")?,
                retry_backoff_base: r.try_get("retry_backoff_base")?,
                retry_backoff_max: r.try_get("retry_backoff_max")?,
            },
        })
    }

    pub fn definition(&self) -> Result<Definition, Vec<ParseError>> {
        parse_definition(&self.nodes, &self.edges)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "nodes": self.nodes,
            "edges": self.edges,
            "created_at": iso(Some(self.created_at)),
            "updated_at": iso(Some(self.updated_at)),
            "last_run": iso(self.last_run),
            "run_count": self.run_count,
            "success_count": self.success_count,
            "error_count": self.error_count,
            "timeout_seconds": self.settings.timeout_seconds,
            "max_retries_per_node": self.settings.max_retries_per_node,
            "retry_backoff_base": self.settings.retry_backoff_base,
            "retry_backoff_max": self.settings.retry_backoff_max,
        })
    }
}

/// Columns of `circle.pipeline_runs` every query selects.
macro_rules! run_columns {
    () => {
        "id, pipeline_id, status, started_at, completed_at, current_node, logs, trigger_data, error_message, created_at, duration_seconds, parent_run_id, parent_node_id, retry_of"
    };
}
pub(crate) use run_columns;

#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub pipeline_id: i64,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub current_node: Option<String>,
    pub logs: Value,
    pub trigger_data: Value,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub parent_run_id: Option<i64>,
    pub parent_node_id: Option<String>,
    /// The run this one retries.
    pub retry_of: Option<i64>,
}

impl RunRow {
    pub fn from_row(r: &Row) -> Result<Self, PgError> {
        Ok(Self {
            id: r.try_get("id")?,
            pipeline_id: r.try_get("pipeline_id")?,
            status: r.try_get("status")?,
            started_at: r.try_get("started_at")?,
            completed_at: r.try_get("completed_at")?,
            current_node: r.try_get("current_node")?,
            logs: r.try_get("logs")?,
            trigger_data: r.try_get("trigger_data")?,
            error_message: r.try_get("error_message")?,
            created_at: r.try_get("created_at")?,
            duration_seconds: r.try_get("duration_seconds")?,
            parent_run_id: r.try_get("parent_run_id")?,
            parent_node_id: r.try_get("parent_node_id")?,
            retry_of: r.try_get("retry_of")?,
        })
    }

    pub fn is_live(&self) -> bool {
        matches!(
            self.status.as_str(),
            "pending" | "running" | "waiting_approval"
        )
    }

    /// The contract's Run; `nodes` gives the logs (else the stored `logs` column is used).
    pub fn to_json(&self, nodes: Option<&[NodeRunRow]>) -> Value {
        let duration = match (self.started_at, self.completed_at) {
            (Some(s), None) if self.is_live() => {
                ((Utc::now() - s).num_milliseconds().max(0) as f64) / 1000.0
            }
            _ => self.duration_seconds,
        };
        let logs = match nodes {
            Some(n) => Value::Array(log_entries(n)),
            None => self.logs.clone(),
        };
        json!({
            "id": self.id,
            "pipeline_id": self.pipeline_id,
            "status": self.status,
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "current_node": self.current_node,
            "logs": logs,
            "trigger_data": self.trigger_data,
            "error_message": self.error_message,
            "created_at": iso(Some(self.created_at)),
            "duration_seconds": duration,
            "parent_run_id": self.parent_run_id,
            "parent_node_id": self.parent_node_id,
            "retry_of": self.retry_of,
        })
    }
}

/// Columns of `circle.pipeline_node_runs` every query selects.
macro_rules! node_run_columns {
    () => {
        "id, run_id, node_id, node_type, status, input_data, output_data, error_message, error_kind, retry_count, attempt, started_at, completed_at, duration_ms, wake_at, child_run_id, created_at"
    };
}
pub(crate) use node_run_columns;

#[derive(Debug, Clone)]
pub struct NodeRunRow {
    pub id: i64,
    pub run_id: i64,
    pub node_id: String,
    pub node_type: String,
    pub status: String,
    pub input_data: Value,
    pub output_data: Value,
    pub error_message: Option<String>,
    pub error_kind: Option<String>,
    pub retry_count: i32,
    pub attempt: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: i32,
    pub wake_at: Option<DateTime<Utc>>,
    pub child_run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl NodeRunRow {
    pub fn from_row(r: &Row) -> Result<Self, PgError> {
        Ok(Self {
            id: r.try_get("id")?,
            run_id: r.try_get("run_id")?,
            node_id: r.try_get("node_id")?,
            node_type: r.try_get("node_type")?,
            status: r.try_get("status")?,
            input_data: r.try_get("input_data")?,
            output_data: r.try_get("output_data")?,
            error_message: r.try_get("error_message")?,
            error_kind: r.try_get("error_kind")?,
            retry_count: r.try_get("retry_count")?,
            attempt: r.try_get("attempt")?,
            started_at: r.try_get("started_at")?,
            completed_at: r.try_get("completed_at")?,
            duration_ms: r.try_get("duration_ms")?,
            wake_at: r.try_get("wake_at")?,
            child_run_id: r.try_get("child_run_id")?,
            created_at: r.try_get("created_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "run_id": self.run_id,
            "node_id": self.node_id,
            "node_type": self.node_type,
            "status": self.status,
            "input_data": self.input_data,
            "output_data": self.output_data,
            "error_message": self.error_message,
            "error_kind": self.error_kind,
            "retry_count": self.retry_count,
            "attempt": self.attempt,
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "duration_ms": self.duration_ms,
            "wake_at": iso(self.wake_at),
            "child_run_id": self.child_run_id,
            "created_at": iso(Some(self.created_at)),
        })
    }

    /// The node's log entry; `None` while it has not started.
    pub fn log_entry(&self) -> Option<Value> {
        let (message, level) = match self.status.as_str() {
            "pending" => return None,
            "running" if self.attempt > 1 => (
                format!(
                    "Node '{}' ({}) retrying: attempt {} after: {}",
                    self.node_id,
                    self.node_type,
                    self.attempt,
                    self.error_message.as_deref().unwrap_or("an error")
                ),
                "warn",
            ),
            "running" if self.node_type == "approval" => (
                format!("Node '{}' (approval) waiting for approval", self.node_id),
                "info",
            ),
            "running" => (
                format!("Node '{}' ({}) running", self.node_id, self.node_type),
                "info",
            ),
            "completed" => (
                format!(
                    "Node '{}' ({}) completed in {} ms",
                    self.node_id, self.node_type, self.duration_ms
                ),
                "info",
            ),
            "failed" => (
                format!(
                    "Node '{}' ({}) failed: {}",
                    self.node_id,
                    self.node_type,
                    self.error_message.as_deref().unwrap_or("unknown error")
                ),
                "error",
            ),
            "skipped" => (
                format!("Node '{}' ({}) skipped", self.node_id, self.node_type),
                "info",
            ),
            "reused" => (
                format!(
                    "Node '{}' ({}) reused: its output comes from the run retried",
                    self.node_id, self.node_type
                ),
                "info",
            ),
            _ => (
                format!(
                    "Node '{}' ({}) {}",
                    self.node_id, self.node_type, self.status
                ),
                "warn",
            ),
        };
        let at = self
            .completed_at
            .or(self.started_at)
            .unwrap_or(self.created_at);
        let output = if self.status == "completed" || self.status == "reused" {
            self.output_data.clone()
        } else {
            Value::Null
        };
        Some(json!({
            "timestamp": at.to_rfc3339(),
            "node_id": self.node_id,
            "message": message,
            "level": level,
            "status": self.status,
            "output": output,
            "error": self.error_message,
            "duration_ms": self.duration_ms,
            "retry_count": self.retry_count,
        }))
    }
}

/// Log entries in the order things happened.
pub fn log_entries(nodes: &[NodeRunRow]) -> Vec<Value> {
    let mut ordered: Vec<&NodeRunRow> = nodes.iter().collect();
    ordered.sort_by_key(|n| (n.completed_at.or(n.started_at), n.id));
    ordered.iter().filter_map(|n| n.log_entry()).collect()
}
