//! `/pipelines` (contract §2.14, semantics §5 and BEHAVIOUR.md A13): pipelines CRUD with
//! validation (the A13 messages, as a 422 list), `validate`, runs and node runs, cancel. A run
//! is created with its job and answered at once (201, `pending`); executors execute it. The
//! SQL lives in `gathering_pipeline::store`; this module maps HTTP to it.
//!
//! Create and update validate the definition; a `draft` may have no nodes yet (the dashboard
//! creates the pipeline before its editor adds any). `agent_id` may be a string or a number
//! and unknown config keys are kept. Run settings (`timeout_seconds`, `max_retries_per_node`,
//! `retry_backoff_base`, `retry_backoff_max`) may be set on create and update.

mod runs;

use actix_web::{HttpResponse, web};
use gathering_pipeline::store::{self, NewPipeline, PipelinePatch, SettingsPatch};
use gathering_pipeline::{Definition, PipelineError, parse_definition, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    toggle,
    validate_route,
    runs::run,
    runs::runs,
    runs::get_run,
    runs::node_runs,
    runs::logs,
    runs::cancel,
    runs::retry
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
        .route("/pipelines/{pipeline_id}/run", web::post().to(runs::run))
        .route("/pipelines/{pipeline_id}/runs", web::get().to(runs::runs))
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}",
            web::get().to(runs::get_run),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/nodes",
            web::get().to(runs::node_runs),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/logs",
            web::get().to(runs::logs),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/cancel",
            web::post().to(runs::cancel),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/retry",
            web::post().to(runs::retry),
        );
}

const STATUSES: [&str; 3] = ["active", "paused", "draft"];

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
const PIPELINE: &str = "The pipeline: `id`, `name`, `description`, `status`, `nodes`, `edges`, `created_at`, `updated_at`, `last_run`, `run_count`, `success_count`, `error_count`, `timeout_seconds`, `max_retries_per_node`, `retry_backoff_base`, `retry_backoff_max`";

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
