//! `/pipelines` (contract §2.14, semantics §5 and BEHAVIOUR.md A13): pipelines CRUD with
//! validation (the A13 messages, as a 422 list), `validate`, runs and node runs, cancel. A run
//! is created with its job and answered at once (201, `pending`); executors execute it. The
//! SQL lives in `gathering_pipeline::store`; this module maps HTTP to it.
//!
//! Create and update validate the definition; a `draft` may have no nodes yet (the dashboard
//! creates the pipeline before its editor adds any). `agent_id` may be a string or a number
//! and unknown config keys are kept. Run settings (`timeout_seconds`, `max_retries_per_node`,
//! `retry_backoff_base`, `retry_backoff_max`) may be set on create and update.

use actix_web::{HttpResponse, web};
use gathering_pipeline::store::{self, NewPipeline, PipelinePatch, SettingsPatch};
use gathering_pipeline::{Definition, PipelineError, parse_definition, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

#[allow(dead_code)] // h17c: until routes::openapi_modules lists the module (then delete)
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    toggle,
    validate_route,
    run,
    runs,
    get_run,
    node_runs,
    logs,
    cancel,
    retry
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `/pipelines/{pipeline_id}`, which would take "approvals" for an id.
    super::pipeline_approvals::configure(cfg);
    cfg.route("/pipelines", web::get().to(list))
        .route("/pipelines", web::post().to(create))
        .route("/pipelines/{pipeline_id}", web::get().to(get))
        .route("/pipelines/{pipeline_id}", web::put().to(update))
        .route("/pipelines/{pipeline_id}", web::delete().to(delete))
        .route("/pipelines/{pipeline_id}/toggle", web::post().to(toggle))
        .route(
            "/pipelines/{pipeline_id}/validate",
            web::post().to(validate_route),
        )
        .route("/pipelines/{pipeline_id}/run", web::post().to(run))
        .route("/pipelines/{pipeline_id}/runs", web::get().to(runs))
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}",
            web::get().to(get_run),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/nodes",
            web::get().to(node_runs),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/logs",
            web::get().to(logs),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/cancel",
            web::post().to(cancel),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/retry",
            web::post().to(retry),
        );
}

const STATUSES: [&str; 3] = ["active", "paused", "draft"];
const RUN_STATUSES: [&str; 7] = [
    "pending",
    "running",
    "waiting_approval",
    "completed",
    "failed",
    "cancelled",
    "timeout",
];

pub(super) fn api(e: PipelineError) -> ApiError {
    match e {
        PipelineError::NotFound | PipelineError::RunNotFound | PipelineError::ApprovalNotFound => {
            ApiError::NotFound(e.to_string())
        }
        PipelineError::NotActive(_) | PipelineError::NotCancellable(_) => {
            ApiError::BadRequest(e.to_string())
        }
        PipelineError::NotApprover => ApiError::Forbidden(e.to_string()),
        PipelineError::Conflict(_) | PipelineError::NotRetryable(_) => {
            ApiError::Conflict(e.to_string())
        }
        PipelineError::UnknownNode(m) => {
            ApiError::Validation(vec![FieldError::body("from_node_id", m)])
        }
        other => ApiError::unexpected(&other),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Pipeline not found".into())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `active`, `paused` or `draft`.
    status: Option<String>,
    /// 1 to 1000 (default 50).
    limit: Option<i64>,
}

/// The 200 description of the operations answering one such object (it names the fields).
#[allow(dead_code)] // h17c: until routes::openapi_modules lists the module (then delete)
const PIPELINE: &str = "The pipeline: `id`, `name`, `description`, `status`, `nodes`, `edges`, `created_at`, `updated_at`, `last_run`, `run_count`, `success_count`, `error_count`, `timeout_seconds`, `max_retries_per_node`, `retry_backoff_base`, `retry_backoff_max`";
/// The 200 description of the operations answering one such object (it names the fields).
#[allow(dead_code)] // h17c: until routes::openapi_modules lists the module (then delete)
const RUN: &str = "The run (its `logs` built from its node runs): `id`, `pipeline_id`, `status`, `started_at`, `completed_at`, `current_node`, `logs`, `trigger_data`, `error_message`, `created_at`, `duration_seconds`, `parent_run_id`, `parent_node_id`, `retry_of`";

#[derive(Serialize, ToSchema)]
struct PipelineList {
    total: usize,
    /// Each pipeline (see `GET /pipelines/{pipeline_id}`).
    pipelines: Vec<Value>,
    /// How many pipelines have each status.
    counts: Map<String, Value>,
}

fn check_query(status: Option<&str>, allowed: &[&str], limit: Option<i64>) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if let Some(s) = status
        && !allowed.contains(&s)
    {
        v.push(FieldError::query(
            "status",
            format!("status must be one of {}", allowed.join(", ")),
        ));
    }
    if limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        v.push(FieldError::query("limit", "limit must be from 1 to 1000"));
    }
    v.finish()
}

/// Every pipeline (of a status), with counts by status.
#[utoipa::path(
    get,
    path = "/pipelines",
    params(ListQuery),
    responses((status = 200, description = "The pipelines", body = PipelineList)),
)]
async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    check_query(q.status.as_deref(), &STATUSES, q.limit)?;
    let client = state.pool.get().await?;
    let (rows, counts) = store::list_pipelines(&client, q.status.as_deref(), q.limit.unwrap_or(50))
        .await
        .map_err(api)?;
    let pipelines: Vec<Value> = rows.iter().map(|p| p.to_json()).collect();
    Ok(HttpResponse::Ok().json(PipelineList {
        total: pipelines.len(),
        pipelines,
        counts,
    }))
}

/// Run settings of a pipeline.
#[derive(Deserialize, ToSchema)]
struct Settings {
    /// 1 to 604800.
    timeout_seconds: Option<i32>,
    /// 1 to 100.
    max_retries_per_node: Option<i32>,
    /// Seconds, 0 to 86400.
    retry_backoff_base: Option<f64>,
    /// Seconds, 0 to 86400.
    retry_backoff_max: Option<f64>,
}

impl Settings {
    fn check(&self, v: &mut Violations) -> SettingsPatch {
        v.check(
            self.timeout_seconds
                .is_none_or(|t| (1..=7 * 86400).contains(&t)),
            "timeout_seconds",
            "timeout_seconds must be from 1 to 604800",
        )
        .check(
            self.max_retries_per_node
                .is_none_or(|n| (1..=100).contains(&n)),
            "max_retries_per_node",
            "max_retries_per_node must be from 1 to 100",
        )
        .check(
            self.retry_backoff_base
                .is_none_or(|b| b.is_finite() && (0.0..=86400.0).contains(&b)),
            "retry_backoff_base",
            "retry_backoff_base must be from 0 to 86400",
        )
        .check(
            self.retry_backoff_max
                .is_none_or(|b| b.is_finite() && (0.0..=86400.0).contains(&b)),
            "retry_backoff_max",
            "retry_backoff_max must be from 0 to 86400",
        );
        SettingsPatch {
            timeout_seconds: self.timeout_seconds,
            max_retries_per_node: self.max_retries_per_node,
            retry_backoff_base: self.retry_backoff_base,
            retry_backoff_max: self.retry_backoff_max,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct CreateBody {
    /// 1 to 255 characters.
    name: String,
    description: Option<String>,
    /// The nodes: `[{id, type, name?, config}]` (a draft may have none).
    #[serde(default)]
    nodes: Value,
    /// The edges: `[{id?, source, target, condition?}]`.
    #[serde(default)]
    edges: Value,
    /// `active`, `paused` or `draft` (default).
    status: Option<String>,
    #[serde(flatten)]
    settings: Settings,
}

fn check_name(name: Option<&str>, v: &mut Violations) {
    v.check(
        name.is_none_or(|n| !n.trim().is_empty() && n.chars().count() <= 255),
        "name",
        "name must be 1 to 255 characters",
    );
}

fn check_common(status: Option<&str>, description: Option<&str>, v: &mut Violations) {
    v.check(
        status.is_none_or(|s| STATUSES.contains(&s)),
        "status",
        "status must be one of active, paused, draft",
    )
    .check(
        description.is_none_or(|d| d.len() <= 20_000),
        "description",
        "description must be at most 20000 bytes",
    );
}

/// Parses and validates a definition; every problem as a 422 field error. A draft may have no
/// nodes yet.
fn definition(
    nodes: &Value,
    edges: &Value,
    status: &str,
    v: &mut Violations,
) -> Option<Definition> {
    match parse_definition(nodes, edges) {
        Err(errors) => {
            for e in errors {
                let mut loc = vec!["body".to_owned()];
                loc.extend(e.path);
                v.push(FieldError {
                    loc,
                    msg: e.msg,
                    kind: "value_error".into(),
                });
            }
            None
        }
        Ok(def) => {
            if !(def.nodes.is_empty() && status == "draft") {
                for msg in validate(&def) {
                    v.push(FieldError::body("nodes", msg));
                }
            }
            Some(def)
        }
    }
}

/// Creates a pipeline; its definition is validated (a draft may have no nodes yet).
#[utoipa::path(
    post,
    path = "/pipelines",
    request_body = CreateBody,
    responses((status = 201, description = PIPELINE, body = Object)),
)]
async fn create(
    state: web::Data<AppState>,
    _user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let status = body.status.as_deref().unwrap_or("draft");
    let mut v = Violations::new();
    check_name(Some(&body.name), &mut v);
    check_common(Some(status), body.description.as_deref(), &mut v);
    let settings = body.settings.check(&mut v);
    let def = definition(&body.nodes, &body.edges, status, &mut v);
    v.finish()?;
    let def = def.unwrap_or_default();
    let client = state.pool.get().await?;
    let row = store::create_pipeline(
        &client,
        &NewPipeline {
            name: body.name.trim(),
            description: body.description.as_deref(),
            status,
            definition: &def,
            settings,
        },
    )
    .await
    .map_err(api)?;
    Ok(HttpResponse::Created().json(row.to_json()))
}

/// One pipeline.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline_id}",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    responses(
        (status = 200, description = PIPELINE, body = Object),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let row = store::get_pipeline(&client, id.into_inner())
        .await
        .map_err(api)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(row.to_json()))
}

#[derive(Deserialize, ToSchema)]
struct UpdateBody {
    /// 1 to 255 characters.
    name: Option<String>,
    description: Option<String>,
    nodes: Option<Value>,
    edges: Option<Value>,
    status: Option<String>,
    #[serde(flatten)]
    settings: Settings,
}

/// Changes a pipeline; the resulting definition is validated whole.
#[utoipa::path(
    put,
    path = "/pipelines/{pipeline_id}",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = PIPELINE, body = Object),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
async fn update(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body.into_inner();
    let mut v = Violations::new();
    check_name(body.name.as_deref(), &mut v);
    check_common(body.status.as_deref(), body.description.as_deref(), &mut v);
    let settings = body.settings.check(&mut v);
    v.finish()?;
    let client = state.pool.get().await?;
    let current = store::get_pipeline(&client, id)
        .await
        .map_err(api)?
        .ok_or_else(not_found)?;
    let nothing = body.name.is_none()
        && body.description.is_none()
        && body.nodes.is_none()
        && body.edges.is_none()
        && body.status.is_none()
        && settings.is_empty();
    if nothing {
        return Ok(HttpResponse::Ok().json(current.to_json()));
    }
    // The definition that results is validated whole (new nodes against current edges…).
    let (mut nodes_json, mut edges_json) = (None, None);
    if body.nodes.is_some() || body.edges.is_some() || body.status.is_some() {
        let nodes = body.nodes.as_ref().unwrap_or(&current.nodes);
        let edges = body.edges.as_ref().unwrap_or(&current.edges);
        let status = body.status.as_deref().unwrap_or(&current.status);
        if let Some(def) = definition(nodes, edges, status, &mut v) {
            nodes_json = body.nodes.is_some().then(|| def.nodes_json());
            edges_json = body.edges.is_some().then(|| def.edges_json());
        }
        v.finish()?;
    }
    let row = store::update_pipeline(
        &client,
        id,
        &PipelinePatch {
            name: body.name.as_deref().map(str::trim),
            description: body.description.as_deref(),
            status: body.status.as_deref(),
            definition_nodes: nodes_json,
            definition_edges: edges_json,
            settings,
        },
    )
    .await
    .map_err(api)?
    .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(row.to_json()))
}

/// Deletes a pipeline and its runs.
#[utoipa::path(
    delete,
    path = "/pipelines/{pipeline_id}",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    if store::delete_pipeline(&client, id.into_inner())
        .await
        .map_err(api)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}

/// Switches a pipeline between active and paused.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/toggle",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    responses(
        (status = 200, description = PIPELINE, body = Object),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
async fn toggle(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let row = store::toggle_pipeline(&client, id.into_inner())
        .await
        .map_err(api)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(row.to_json()))
}

#[derive(Serialize, ToSchema)]
struct Validation {
    valid: bool,
    errors: Vec<String>,
}

/// Validates the stored definition.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/validate",
    params(("pipeline_id" = i64, Path, description = "Pipeline id")),
    responses(
        (status = 200, description = "Whether the definition is valid, and its problems", body = Validation),
        (status = 404, description = "No such pipeline", body = Detail),
    ),
)]
async fn validate_route(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let row = store::get_pipeline(&client, id.into_inner())
        .await
        .map_err(api)?
        .ok_or_else(not_found)?;
    let errors = match row.definition() {
        Ok(def) => validate(&def),
        Err(parse) => parse.iter().map(ToString::to_string).collect(),
    };
    Ok(HttpResponse::Ok().json(Validation {
        valid: errors.is_empty(),
        errors,
    }))
}

/// An optional JSON object body (empty or `null` is an empty object).
pub(super) fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: format!("invalid JSON: {e}"),
            kind: "value_error".into(),
        }])
    })?;
    match parsed {
        Value::Null => Ok(Map::new()),
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: "body must be an object".into(),
            kind: "value_error".into(),
        }])),
    }
}

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
async fn run(
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
struct RunsQuery {
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
async fn runs(
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
async fn get_run(
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
async fn node_runs(
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
async fn logs(
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
async fn cancel(
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
async fn retry(
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
