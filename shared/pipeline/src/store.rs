//! The pipeline tables as the API uses them: pipelines CRUD, starting a run (the run row and
//! its job in one transaction), reading runs and node runs, and cancelling a run with its
//! sub-runs (rows, node rows, a `NOTIFY pipeline_cancel` per run for the executors holding
//! them, and the events, in one transaction).

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;
use gathering_events::publish_in;
use gathering_queue::{NewJob, enqueue_in};
use serde_json::{Map, Value, json};

use crate::PipelineError;
use crate::events::run_event;
use crate::model::{Definition, Settings};
use crate::record::{
    NodeRunRow, PipelineRow, RunRow, node_run_columns, pipeline_columns, run_columns,
};
use crate::validate::validate;

/// The job kind that executes a run, its queue, and the channel that cancels a run.
pub const JOB_KIND: &str = "pipeline_run.execute";
pub const QUEUE: &str = "pipelines";
pub const CANCEL_CHANNEL: &str = "pipeline_cancel";

/// The unique key of the job that executes run `run_id`.
pub fn run_job_key(run_id: i64) -> String {
    format!("pipeline_run:{run_id}")
}

/// The job that executes run `run_id` (the scheduler enqueues the same).
pub fn run_job(run_id: i64) -> NewJob {
    NewJob::new(JOB_KIND, json!({ "run_id": run_id }))
        .queue(QUEUE)
        .unique_key(run_job_key(run_id))
        .max_attempts(25)
}

const LIST_SQL: &str = concat!(
    "SELECT ",
    pipeline_columns!(),
    " FROM circle.pipelines WHERE ($1::text IS NULL OR status = $1) ",
    "ORDER BY updated_at DESC, id DESC LIMIT $2"
);
const COUNTS_SQL: &str = "SELECT status, count(*) FROM circle.pipelines GROUP BY status";
const GET_SQL: &str = concat!(
    "SELECT ",
    pipeline_columns!(),
    " FROM circle.pipelines WHERE id = $1"
);
const CREATE_SQL: &str = concat!(
    "INSERT INTO circle.pipelines (name, description, status, nodes, edges, timeout_seconds, ",
    "max_retries_per_node, retry_backoff_base, retry_backoff_max) ",
    "VALUES ($1, $2, $3, $4, $5, COALESCE($6::int4, 3600), COALESCE($7::int4, 3), ",
    "COALESCE($8::float8, 1.0), COALESCE($9::float8, 60.0)) RETURNING ",
    pipeline_columns!()
);
const UPDATE_SQL: &str = concat!(
    "UPDATE circle.pipelines SET name = COALESCE($2, name), ",
    "description = COALESCE($3, description), status = COALESCE($4, status), ",
    "nodes = COALESCE($5, nodes), edges = COALESCE($6, edges), ",
    "timeout_seconds = COALESCE($7, timeout_seconds), ",
    "max_retries_per_node = COALESCE($8, max_retries_per_node), ",
    "retry_backoff_base = COALESCE($9, retry_backoff_base), ",
    "retry_backoff_max = COALESCE($10, retry_backoff_max) ",
    "WHERE id = $1 RETURNING ",
    pipeline_columns!()
);
const DELETE_SQL: &str = "DELETE FROM circle.pipelines WHERE id = $1";
const TOGGLE_SQL: &str = concat!(
    "UPDATE circle.pipelines SET status = CASE WHEN status = 'active' THEN 'paused' ",
    "ELSE 'active' END WHERE id = $1 RETURNING ",
    pipeline_columns!()
);
const INSERT_RUN_SQL: &str = concat!(
    "INSERT INTO circle.pipeline_runs (pipeline_id, status, trigger_data, definition, ",
    "timeout_seconds) VALUES ($1, 'pending', $2, $3, $4) RETURNING ",
    run_columns!()
);
const INSERT_INVALID_RUN_SQL: &str = concat!(
    "WITH p AS (UPDATE circle.pipelines SET run_count = run_count + 1, ",
    "error_count = error_count + 1, last_run = now() WHERE id = $1 RETURNING id) ",
    "INSERT INTO circle.pipeline_runs (pipeline_id, status, started_at, completed_at, ",
    "trigger_data, error_message) SELECT p.id, 'failed', now(), now(), $2, $3 FROM p RETURNING ",
    run_columns!()
);
const INSERT_NODE_ROWS_SQL: &str = "
INSERT INTO circle.pipeline_node_runs (run_id, node_id, node_type)
SELECT $1, n.id, n.t FROM unnest($2::text[], $3::text[]) AS n(id, t)
ON CONFLICT (run_id, node_id) DO NOTHING";
const LIST_RUNS_SQL: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM circle.pipeline_runs WHERE pipeline_id = $1 AND ($2::text IS NULL OR status = $2) ",
    "ORDER BY created_at DESC, id DESC LIMIT $3"
);
const GET_RUN_SQL: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM circle.pipeline_runs WHERE id = $1 AND pipeline_id = $2"
);
const NODE_RUNS_SQL: &str = concat!(
    "SELECT ",
    node_run_columns!(),
    " FROM circle.pipeline_node_runs WHERE run_id = ANY($1) ORDER BY run_id, id"
);
const LOCK_RUN_SQL: &str =
    "SELECT status FROM circle.pipeline_runs WHERE id = $1 AND pipeline_id = $2 FOR UPDATE";
const CANCEL_TREE_SQL: &str = "
WITH RECURSIVE tree AS (
    SELECT id FROM circle.pipeline_runs WHERE id = $1
    UNION ALL
    SELECT c.id FROM circle.pipeline_runs c JOIN tree t ON c.parent_run_id = t.id
), runs AS (
    UPDATE circle.pipeline_runs r SET
        status = $3, completed_at = now(), error_message = $4, runner = NULL,
        current_node = NULL,
        duration_seconds = COALESCE(extract(epoch FROM now() - r.started_at)::float8, 0)
    FROM tree
    WHERE r.id = tree.id AND (tree.id <> $1 OR $2::bool)
      AND r.status IN ('pending', 'running', 'waiting_approval')
    RETURNING r.id, r.pipeline_id
), nodes AS (
    UPDATE circle.pipeline_node_runs n SET
        status = 'cancelled', completed_at = now(), wake_at = NULL,
        duration_ms = CASE WHEN n.started_at IS NULL THEN 0 ELSE
            LEAST(extract(epoch FROM now() - n.started_at) * 1000, 2147483647)::int END
    FROM runs WHERE n.run_id = runs.id AND n.status IN ('pending', 'running')
    RETURNING n.run_id
)
SELECT runs.id, runs.pipeline_id, (SELECT count(*) FROM nodes) AS nodes,
       pg_notify('pipeline_cancel', runs.id::text)::text AS notified
FROM runs";

pub async fn list_pipelines<C: GenericClient>(
    c: &C,
    status: Option<&str>,
    limit: i64,
) -> Result<(Vec<PipelineRow>, Map<String, Value>), PipelineError> {
    let rows = c.query(LIST_SQL, &[&status, &limit]).await?;
    let counts = c.query(COUNTS_SQL, &[]).await?;
    let counts = counts
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0)?,
                Value::from(r.try_get::<_, i64>(1)?),
            ))
        })
        .collect::<Result<_, PgError>>()?;
    let pipelines = rows
        .iter()
        .map(PipelineRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((pipelines, counts))
}

pub async fn get_pipeline<C: GenericClient>(
    c: &C,
    id: i64,
) -> Result<Option<PipelineRow>, PipelineError> {
    Ok(c.query_opt(GET_SQL, &[&id])
        .await?
        .as_ref()
        .map(PipelineRow::from_row)
        .transpose()?)
}

/// Optional run settings of a create or update.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub timeout_seconds: Option<i32>,
    pub max_retries_per_node: Option<i32>,
    pub retry_backoff_base: Option<f64>,
    pub retry_backoff_max: Option<f64>,
}

impl SettingsPatch {
    pub fn is_empty(&self) -> bool {
        self.timeout_seconds.is_none()
            && self.max_retries_per_node.is_none()
            && self.retry_backoff_base.is_none()
            && self.retry_backoff_max.is_none()
    }
}

pub struct NewPipeline<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub status: &'a str,
    pub definition: &'a Definition,
    pub settings: SettingsPatch,
}

pub async fn create_pipeline<C: GenericClient>(
    c: &C,
    p: &NewPipeline<'_>,
) -> Result<PipelineRow, PipelineError> {
    let s = &p.settings;
    let row = c
        .query_one(
            CREATE_SQL,
            &[
                &p.name,
                &p.description,
                &p.status,
                &p.definition.nodes_json(),
                &p.definition.edges_json(),
                &s.timeout_seconds,
                &s.max_retries_per_node,
                &s.retry_backoff_base,
                &s.retry_backoff_max,
            ],
        )
        .await?;
    Ok(PipelineRow::from_row(&row)?)
}

/// An update: `None` keeps the field.
#[derive(Debug, Default)]
pub struct PipelinePatch<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub status: Option<&'a str>,
    pub definition_nodes: Option<Value>,
    pub definition_edges: Option<Value>,
    pub settings: SettingsPatch,
}

pub async fn update_pipeline<C: GenericClient>(
    c: &C,
    id: i64,
    p: &PipelinePatch<'_>,
) -> Result<Option<PipelineRow>, PipelineError> {
    let s = &p.settings;
    let row = c
        .query_opt(
            UPDATE_SQL,
            &[
                &id,
                &p.name,
                &p.description,
                &p.status,
                &p.definition_nodes,
                &p.definition_edges,
                &s.timeout_seconds,
                &s.max_retries_per_node,
                &s.retry_backoff_base,
                &s.retry_backoff_max,
            ],
        )
        .await?;
    Ok(row.as_ref().map(PipelineRow::from_row).transpose()?)
}

/// Deletes a pipeline and (by cascade) its runs; false when there was none.
pub async fn delete_pipeline<C: GenericClient>(c: &C, id: i64) -> Result<bool, PipelineError> {
    Ok(c.execute(DELETE_SQL, &[&id]).await? == 1)
}

/// active → paused, anything else → active.
pub async fn toggle_pipeline<C: GenericClient>(
    c: &C,
    id: i64,
) -> Result<Option<PipelineRow>, PipelineError> {
    Ok(c.query_opt(TOGGLE_SQL, &[&id])
        .await?
        .as_ref()
        .map(PipelineRow::from_row)
        .transpose()?)
}

/// Creates the pending node rows of a run (idempotent).
pub async fn insert_node_rows<C: GenericClient>(
    c: &C,
    run_id: i64,
    def: &Definition,
) -> Result<(), PipelineError> {
    let ids: Vec<&str> = def.nodes.iter().map(|n| n.id.as_str()).collect();
    let types: Vec<&str> = def.nodes.iter().map(|n| n.node_type.as_str()).collect();
    let stmt = c.prepare_cached(INSERT_NODE_ROWS_SQL).await?;
    c.execute(&stmt, &[&run_id, &ids, &types]).await?;
    Ok(())
}

/// `POST /pipelines/{id}/run`: creates the run and its job in one transaction and returns the
/// pending run at once; executors pick the job up. A definition that does not validate gives a
/// failed run ("Validation failed: …") and no job, as the contract says (not an HTTP error).
pub async fn start_run(
    client: &mut gathering_db::Client,
    pipeline_id: i64,
    trigger_data: &Value,
) -> Result<RunRow, PipelineError> {
    let tx = client.transaction().await?;
    let run = start_run_in(&tx, pipeline_id, trigger_data).await?;
    tx.commit().await?;
    Ok(run)
}

/// [`start_run`] inside the caller's transaction: a scheduled `execute_pipeline` links the run
/// to its schedule run in the same transaction, and gets the same validation, definition
/// snapshot and node rows as a run started through the API.
pub async fn start_run_in<C: GenericClient>(
    tx: &C,
    pipeline_id: i64,
    trigger_data: &Value,
) -> Result<RunRow, PipelineError> {
    let pipeline = get_pipeline(tx, pipeline_id)
        .await?
        .ok_or(PipelineError::NotFound)?;
    if pipeline.status != "active" {
        return Err(PipelineError::NotActive(pipeline.status));
    }
    let errors = match pipeline.definition() {
        Ok(def) => match validate(&def) {
            errors if errors.is_empty() => {
                return insert_run(tx, &pipeline, &def, trigger_data).await;
            }
            errors => errors,
        },
        Err(parse) => parse.iter().map(ToString::to_string).collect(),
    };
    let message = format!("Validation failed: {}", errors.join("; "));
    let row = tx
        .query_one(
            INSERT_INVALID_RUN_SQL,
            &[&pipeline_id, trigger_data, &message],
        )
        .await?;
    let run = RunRow::from_row(&row)?;
    publish_in(
        tx,
        &[run_event(pipeline_id, run.id, "failed", Some(&message))],
    )
    .await?;
    Ok(run)
}

async fn insert_run<C: GenericClient>(
    c: &C,
    pipeline: &PipelineRow,
    def: &Definition,
    trigger_data: &Value,
) -> Result<RunRow, PipelineError> {
    let settings: &Settings = &pipeline.settings;
    let row = c
        .query_one(
            INSERT_RUN_SQL,
            &[
                &pipeline.id,
                trigger_data,
                &def.snapshot(settings),
                &settings.timeout_seconds,
            ],
        )
        .await?;
    let run = RunRow::from_row(&row)?;
    insert_node_rows(c, run.id, def).await?;
    enqueue_in(c, &run_job(run.id)).await?;
    Ok(run)
}

/// Runs of a pipeline, newest first, with their node runs (for the logs).
pub async fn list_runs<C: GenericClient>(
    c: &C,
    pipeline_id: i64,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<(RunRow, Vec<NodeRunRow>)>, PipelineError> {
    let runs: Vec<RunRow> = c
        .query(LIST_RUNS_SQL, &[&pipeline_id, &status, &limit])
        .await?
        .iter()
        .map(RunRow::from_row)
        .collect::<Result<_, _>>()?;
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let mut nodes = node_runs_of(c, &ids).await?;
    Ok(runs
        .into_iter()
        .map(|r| {
            let mine: Vec<NodeRunRow> = nodes.extract_if(.., |n| n.run_id == r.id).collect();
            (r, mine)
        })
        .collect())
}

pub async fn get_run<C: GenericClient>(
    c: &C,
    pipeline_id: i64,
    run_id: i64,
) -> Result<Option<(RunRow, Vec<NodeRunRow>)>, PipelineError> {
    let Some(row) = c.query_opt(GET_RUN_SQL, &[&run_id, &pipeline_id]).await? else {
        return Ok(None);
    };
    let nodes = node_runs_of(c, &[run_id]).await?;
    Ok(Some((RunRow::from_row(&row)?, nodes)))
}

/// Node runs of some runs, by run then creation.
pub async fn node_runs_of<C: GenericClient>(
    c: &C,
    run_ids: &[i64],
) -> Result<Vec<NodeRunRow>, PipelineError> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = c.prepare_cached(NODE_RUNS_SQL).await?;
    Ok(c.query(&stmt, &[&run_ids])
        .await?
        .iter()
        .map(NodeRunRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// `POST /pipelines/{id}/runs/{run_id}/cancel`: the run and its sub-runs become `cancelled`
/// with their unfinished nodes, and each executor holding one is told at once.
pub async fn cancel_run(
    client: &mut gathering_db::Client,
    pipeline_id: i64,
    run_id: i64,
) -> Result<RunRow, PipelineError> {
    let tx = client.transaction().await?;
    let status: String = tx
        .query_opt(LOCK_RUN_SQL, &[&run_id, &pipeline_id])
        .await?
        .ok_or(PipelineError::RunNotFound)?
        .try_get(0)?;
    if !matches!(status.as_str(), "pending" | "running" | "waiting_approval") {
        return Err(PipelineError::NotCancellable(status));
    }
    cancel_tree_in(&tx, run_id, true, "cancelled", "Pipeline run was cancelled").await?;
    let row = tx.query_one(GET_RUN_SQL, &[&run_id, &pipeline_id]).await?;
    tx.commit().await?;
    Ok(RunRow::from_row(&row)?)
}

/// Ends the live runs of a tree (the root too when `include_root`) with `status`, their
/// unfinished nodes as cancelled, notifies the executors holding them and publishes the run
/// events; inside the caller's transaction. Returns the ids ended.
pub async fn cancel_tree_in<C: GenericClient>(
    c: &C,
    root: i64,
    include_root: bool,
    status: &str,
    message: &str,
) -> Result<Vec<i64>, PipelineError> {
    let rows = c
        .query(CANCEL_TREE_SQL, &[&root, &include_root, &status, &message])
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get(0)?;
        events.push(run_event(r.try_get(1)?, id, status, Some(message)));
        ids.push(id);
    }
    publish_in(c, &events).await?;
    Ok(ids)
}
