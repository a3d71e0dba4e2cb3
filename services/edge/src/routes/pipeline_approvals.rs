//! Approval nodes' decisions (issue 21): `GET /pipelines/approvals` lists the pending approvals
//! of live runs the caller may decide (their role or user id is among the node's approvers);
//! `POST /pipelines/{id}/runs/{run_id}/nodes/{node_id}/approve|reject` `B:{comment?, data?}`
//! decides one: 403 when the caller is not an approver, 409 when it is already decided or its
//! run is over, 404 when there is no such approval. The decision is stored and the run's job
//! woken (`gathering_pipeline::decision`); whichever executor takes it continues the run.

use actix_web::{HttpResponse, web};
use gathering_pipeline::decision::{self, Decide};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::pipelines::{api, body_object};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// Largest `data` an approver may attach (it becomes the node's output).
const MAX_DATA_BYTES: usize = 64 * 1024;

#[derive(utoipa::OpenApi)]
#[openapi(paths(pending, approve, reject))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/pipelines/approvals", web::get().to(pending))
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/nodes/{node_id}/approve",
            web::post().to(approve),
        )
        .route(
            "/pipelines/{pipeline_id}/runs/{run_id}/nodes/{node_id}/reject",
            web::post().to(reject),
        );
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PendingQuery {
    /// 1 to 1000 (default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct PendingApprovals {
    /// Each approval: `id`, `run_id`, `pipeline_id`, `pipeline_name`, `node_id`, `message`,
    /// `approvers` {roles, user_ids}, `on_timeout`, `context`, `status`, `requested_at`,
    /// `expires_at`, `run_status`…
    approvals: Vec<Value>,
    total: usize,
}

/// The optional body of approve and reject (documentation of what `decide` parses: an empty
/// body or `null` is `{}`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct DecisionBody {
    /// At most 4000 characters.
    comment: Option<String>,
    /// Approve only: becomes the node's output (an object of at most 64 KiB).
    data: Option<serde_json::Map<String, Value>>,
}

/// The pending approvals of live runs the caller may decide.
#[utoipa::path(
    get,
    path = "/pipelines/approvals",
    params(PendingQuery),
    responses((status = 200, description = "The pending approvals", body = PendingApprovals)),
)]
async fn pending(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<PendingQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut v = Violations::new();
    v.check(
        q.limit.is_none_or(|l| (1..=1000).contains(&l)),
        "limit",
        "limit must be from 1 to 1000",
    );
    v.finish()?;
    let client = state.pool.get().await?;
    let rows = decision::pending_for(&client, &user.0.sub, &user.0.role, q.limit.unwrap_or(100))
        .await
        .map_err(api)?;
    let approvals: Vec<Value> = rows.iter().map(|a| a.to_json()).collect();
    Ok(HttpResponse::Ok().json(PendingApprovals {
        total: approvals.len(),
        approvals,
    }))
}

/// Approves a pending approval node of a run; the run continues.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/nodes/{node_id}/approve",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
        ("node_id" = String, Path, description = "The approval node's id"),
    ),
    request_body(content = Option<DecisionBody>, description = "Optional `{comment?, data?}`"),
    responses(
        (status = 200, description = "The decided approval", body = Object),
        (status = 403, description = "The caller is not an approver", body = Detail),
        (status = 404, description = "No such approval", body = Detail),
        (status = 409, description = "Already decided, or the run is over", body = Detail),
    ),
)]
async fn approve(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(state, user, path.into_inner(), &body, true).await
}

/// Rejects a pending approval node of a run; the run continues.
#[utoipa::path(
    post,
    path = "/pipelines/{pipeline_id}/runs/{run_id}/nodes/{node_id}/reject",
    params(
        ("pipeline_id" = i64, Path, description = "Pipeline id"),
        ("run_id" = i64, Path, description = "Run id"),
        ("node_id" = String, Path, description = "The approval node's id"),
    ),
    request_body(content = Option<DecisionBody>, description = "Optional `{comment?, data?}`"),
    responses(
        (status = 200, description = "The decided approval", body = Object),
        (status = 403, description = "The caller is not an approver", body = Detail),
        (status = 404, description = "No such approval", body = Detail),
        (status = 409, description = "Already decided, or the run is over", body = Detail),
    ),
)]
async fn reject(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(state, user, path.into_inner(), &body, false).await
}

async fn decide(
    state: web::Data<AppState>,
    user: AuthUser,
    (pipeline_id, run_id, node_id): (i64, i64, String),
    body: &[u8],
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    let mut o = body_object(body)?;
    let mut errors = Vec::new();
    let comment = match o.remove("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.chars().count() <= 4000 => Some(c),
        Some(_) => {
            errors.push(FieldError::body(
                "comment",
                "comment must be a string of at most 4000 characters",
            ));
            None
        }
    };
    let data = match o.remove("data") {
        None | Some(Value::Null) => None,
        Some(_) if !approve => {
            errors.push(FieldError::body("data", "data is only accepted to approve"));
            None
        }
        Some(d @ Value::Object(_))
            if serde_json::to_vec(&d).map_or(usize::MAX, |b| b.len()) <= MAX_DATA_BYTES =>
        {
            Some(d)
        }
        Some(_) => {
            errors.push(FieldError::body(
                "data",
                format!("data must be an object of at most {MAX_DATA_BYTES} bytes"),
            ));
            None
        }
    };
    if node_id.is_empty() || node_id.chars().count() > 200 {
        return Err(ApiError::NotFound("Approval not found".into()));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut client = state.pool.get().await?;
    let decided = decision::decide(
        &mut client,
        &Decide {
            pipeline_id,
            run_id,
            node_id: &node_id,
            approve,
            sub: &user.0.sub,
            role: &user.0.role,
            comment: comment.as_deref(),
            data: data.as_ref(),
        },
    )
    .await
    .map_err(api)?;
    Ok(HttpResponse::Ok().json(decided.to_json()))
}
