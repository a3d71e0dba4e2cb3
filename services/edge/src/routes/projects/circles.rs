//! The circles linked to a project (`/projects/{project_id}/circles…`).

use actix_web::{HttpResponse, web};
use gathering_tools::project::store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{api, not_found};
use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
struct ProjectCircles {
    project_id: i64,
    project_name: String,
    total: usize,
    /// Each linked circle with `is_primary`.
    circles: Vec<Value>,
}

/// The circles linked to a project.
#[utoipa::path(
    get,
    path = "/projects/{project_id}/circles",
    params(("project_id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "The linked circles", body = ProjectCircles),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub(super) async fn circles(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    let p = store::get(&client, id)
        .await
        .map_err(api)?
        .ok_or_else(|| not_found(id))?;
    let circles = store::circles(&client, id).await.map_err(api)?;
    Ok(HttpResponse::Ok().json(ProjectCircles {
        project_id: id,
        project_name: p.name,
        total: circles.len(),
        circles,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LinkQuery {
    /// Make this the circle's primary project (default false).
    is_primary: Option<bool>,
}

#[derive(Serialize, ToSchema)]
struct Linked {
    /// `linked` or `updated`.
    status: String,
    project_id: i64,
    circle_id: i64,
}

/// Links a circle to a project.
#[utoipa::path(
    post,
    path = "/projects/{project_id}/circles/{circle_id}",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        ("circle_id" = i64, Path, description = "Circle id"),
        LinkQuery,
    ),
    responses(
        (status = 201, description = "Linked", body = Linked),
        (status = 404, description = "No such project or circle", body = Detail),
    ),
)]
pub(super) async fn link_circle(
    state: web::Data<AppState>,
    _user: AuthUser,
    ids: web::Path<(i64, i64)>,
    q: web::Query<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, circle_id) = ids.into_inner();
    let client = state.pool.get().await?;
    let status = store::link_circle(
        &client,
        project_id,
        circle_id,
        q.is_primary.unwrap_or(false),
    )
    .await
    .map_err(api)?;
    Ok(HttpResponse::Created().json(Linked {
        status: status.into(),
        project_id,
        circle_id,
    }))
}

/// Unlinks a circle from a project.
#[utoipa::path(
    delete,
    path = "/projects/{project_id}/circles/{circle_id}",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        ("circle_id" = i64, Path, description = "Circle id"),
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "The circle is not linked to the project", body = Detail),
    ),
)]
pub(super) async fn unlink_circle(
    state: web::Data<AppState>,
    _user: AuthUser,
    ids: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, circle_id) = ids.into_inner();
    let client = state.pool.get().await?;
    if !store::unlink_circle(&client, project_id, circle_id)
        .await
        .map_err(api)?
    {
        return Err(ApiError::NotFound(format!(
            "Circle {circle_id} is not linked to project {project_id}"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}
