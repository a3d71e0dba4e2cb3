//! Runs of a pipeline: starting one, listing them, a run with its node runs and log,
//! cancelling and retrying (`/pipelines/{pipeline_id}/run` and `…/runs/…`).

use actix_web::{HttpResponse, web};
use gathering_pipeline::store;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{api, body_object, check_query, not_found};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

const RUN_STATUSES: [&str; 7] = [
    "pending",
    "running",
    "waiting_approval",
    "completed",
    "failed",
    "cancelled",
    "timeout",
];

/// The 200 description of the operations answering one such object (it names the fields).
const RUN: &str = "The run (its `logs` built from its node runs): `id`, `pipeline_id`, `status`, `started_at`, `completed_at`, `current_node`, `logs`, `trigger_data`, `error_message`, `created_at`, `duration_seconds`, `parent_run_id`, `parent_node_id`, `retry_of`";

/// `trigger_data` of a body: `None` when absent or null.
fn trigger_field(o: &mut Map<String, Value>) -> Result<Option<Value>, ApiError> {
    match o.remove("trigger_data") {
        None | Some(Value::Null) => Ok(None),
        Some(t @ Value::Object(_)) => Ok(Some(t)),
        Some(_) => Err(ApiError::Validation(vec![FieldError::body(
            "trigger_data",
            "trigger_data must be an object",
        )])),
    }
}

/// `B:{trigger_data?}`, the body itself optional.
fn trigger_data(body: &[u8]) -> Result<Value, ApiError> {
    Ok(trigger_field(&mut body_object(body)?)?.unwrap_or_else(|| json!({})))
}

/// The optional body of `run` (documentation of what `trigger_data` parses: an empty body or
/// `null` is `{}`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct RunBody {
    /// Input of the run's trigger node.
    trigger_data: Option<Map<String, Value>>,
}

/// Starts a run (answered at once, `pending`; an executor runs it).
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/run",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    request_body(content = Option<RunBody>, description = "Optional `{trigger_data?}`"),
    responses(
        (status = 201, description = RUN, body = Object),
        (status = 400, description = "The pipeline is not active", body = Detail),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
pub(super) async fn run(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let trigger = trigger_data(&body)?;
    let mut client = state.pool.get().await?;
    let run = store::start_run(&mut client, id.into_inner(), &trigger)
        .await
        .map_err(api)?;
    Ok(HttpResponse::Created().json(run.to_json(Some(&[]))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RunsQuery {
    /// `pending`, `running`, `waiting_approval`, `completed`, `failed`, `cancelled` or `timeout`.
    status: Option<String>,
    /// 1 to 1000 (default 20).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct RunList {
    /// Each run with its node runs.
    runs: Vec<Value>,
    total: usize,
    pipeline_id: i64,
}

/// The pipeline's runs, newest first.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline_id}/runs",
    params(("pipeline_id" = i64, Path, description = "Pipeline id"), RunsQuery),
    responses(
        (status = 200, description = "The runs", body = RunList),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
pub(super) async fn runs(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<RunsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    check_query(q.status.as_deref(), &RUN_STATUSES, q.limit)?;
    let client = state.pool.get().await?;
    store::get_pipeline(&client, id)
        .await
        .map_err(api)?
        .ok_or_else(not_found)?;
    let runs: Vec<Value> =
        store::list_runs(&client, id, q.status.as_deref(), q.limit.unwrap_or(20))
            .await
            .map_err(api)?
            .iter()
            .map(|(run, nodes)| run.to_json(Some(nodes)))
            .collect();
    Ok(HttpResponse::Ok().json(RunList {
        total: runs.len(),
        runs,
        pipeline_id: id,
    }))
}

async fn load_run(
    state: &AppState,
    pipeline_id: i64,
    run_id: i64,
) -> Result<
    (
        gathering_pipeline::RunRow,
        Vec<gathering_pipeline::NodeRunRow>,
    ),
    ApiError,
> {
    let client = state.pool.get().await?;
    store::get_run(&client, pipeline_id, run_id)
        .await
        .map_err(api)?
        .ok_or_else(|| ApiError::NotFound("Run not found".into()))
}

/// One run with its node runs.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline_id}/runs/{run_id}",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = RUN, body = Object),
        (status = 404, description = "No such run", body = Detail),
    ),
)]
pub(super) async fn get_run(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (pipeline_id, run_id) = path.into_inner();
    let (run, nodes) = load_run(&state, pipeline_id, run_id).await?;
    Ok(HttpResponse::Ok().json(run.to_json(Some(&nodes))))
}

#[derive(Serialize, ToSchema)]
struct NodeRuns {
    run_id: i64,
    /// Each node run: `id`, `run_id`, `node_id`, `node_type`, `status`, `input_data`,
    /// `output_data`, `error_message`, `error_kind`, `retry_count`, `attempt`, `started_at`,
    /// `completed_at`, `duration_ms`, `wake_at`, `child_run_id`, `created_at`.
    nodes: Vec<Value>,
    total: usize,
}

/// The node runs of a run.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/nodes",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The node runs", body = NodeRuns),
        (status = 404, description = "No such run", body = Detail),
    ),
)]
pub(super) async fn node_runs(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (pipeline_id, run_id) = path.into_inner();
    let (_, nodes) = load_run(&state, pipeline_id, run_id).await?;
    let nodes: Vec<Value> = nodes.iter().map(|n| n.to_json()).collect();
    Ok(HttpResponse::Ok().json(NodeRuns {
        run_id,
        total: nodes.len(),
        nodes,
    }))
}

#[derive(Serialize, ToSchema)]
struct RunLogs {
    run_id: i64,
    status: String,
    /// The log entries of the run's nodes, in order.
    logs: Vec<Value>,
}

/// The run's log.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/logs",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The log", body = RunLogs),
        (status = 404, description = "No such run", body = Detail),
    ),
)]
pub(super) async fn logs(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (pipeline_id, run_id) = path.into_inner();
    let (run, nodes) = load_run(&state, pipeline_id, run_id).await?;
    let logs = gathering_pipeline::record::log_entries(&nodes);
    Ok(HttpResponse::Ok().json(RunLogs {
        run_id,
        status: run.status,
        logs,
    }))
}

/// Cancels a run that has not finished.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/cancel",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = RUN, body = Object),
        (status = 400, description = "The run cannot be cancelled", body = Detail),
        (status = 404, description = "No such run", body = Detail),
    ),
)]
pub(super) async fn cancel(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (pipeline_id, run_id) = path.into_inner();
    let mut client = state.pool.get().await?;
    let run = store::cancel_run(&mut client, pipeline_id, run_id)
        .await
        .map_err(api)?;
    let nodes = store::node_runs_of(&client, &[run_id]).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(run.to_json(Some(&nodes))))
}

/// The optional body of `retry` (documentation of what the handler parses).
#[derive(ToSchema)]
#[allow(dead_code)]
struct RetryBody {
    /// Run again from this node (1 to 200 characters); earlier nodes' results are reused.
    from_node_id: Option<String>,
    /// New trigger input; default the old run's.
    trigger_data: Option<Map<String, Value>>,
}

/// Retries a finished run: 201 with the new run (`retry_of` the old one); its reused nodes are
/// listed with the run's nodes.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/retry",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
    ),
    request_body(content = Option<RetryBody>, description = "Optional `{from_node_id?, trigger_data?}`"),
    responses(
        (status = 201, description = RUN, body = Object),
        (status = 404, description = "No such run", body = Detail),
        (status = 409, description = "The run cannot be retried", body = Detail),
    ),
)]
pub(super) async fn retry(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (pipeline_id, run_id) = path.into_inner();
    let mut o = body_object(&body)?;
    let trigger = trigger_field(&mut o)?;
    let from = match o.remove("from_node_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 200 => Some(s),
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::body(
                "from_node_id",
                "from_node_id must be a node id (1 to 200 characters)",
            )]));
        }
    };
    let mut client = state.pool.get().await?;
    let run = gathering_pipeline::retry::retry_run(
        &mut client,
        pipeline_id,
        run_id,
        &gathering_pipeline::retry::RetryRequest {
            from_node_id: from.as_deref(),
            trigger_data: trigger.as_ref(),
        },
    )
    .await
    .map_err(api)?;
    let nodes = store::node_runs_of(&client, &[run.id]).await.map_err(api)?;
    Ok(HttpResponse::Created().json(run.to_json(Some(&nodes))))
}
