//! Task routes of `/circles/{name}/tasks` (contract §2.5): list, create, get, submit, approve,
//! reject, and (beyond the contract) assign. Inputs are bounded here; the rules are in
//! `gathering-circles`.

use actix_web::{HttpResponse, web};
use gathering_circles::review::{Applied, Verdict};
use gathering_circles::tasks::NewTask;
use gathering_circles::{input, review, tasks};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{circle_error, circle_path, field, invalid};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TasksQuery {
    status_filter: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/circles/{name}/tasks",
    params(("name" = String, Path, description = "Name"), TasksQuery),
    responses(
        (status = 200, description = "`{tasks[Task], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn list_tasks(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
    q: web::Query<TasksQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let q = q.into_inner();
    if let Some(s) = &q.status_filter
        && !input::TASK_STATUSES.contains(&s.as_str())
    {
        return Err(invalid(
            "query",
            "status_filter",
            format!("Input should be one of {}", input::TASK_STATUSES.join(", ")),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(invalid(
            "query",
            "limit",
            "Input should be between 1 and 500",
        ));
    }
    let (tasks, total) = tasks::list(
        &state.circles,
        circle_path(&name)?,
        q.status_filter.as_deref(),
        limit,
    )
    .await
    .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"tasks": tasks, "total": total})))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct TaskBody {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    required_competencies: Vec<String>,
    priority: Option<Value>,
    assigned_agent_id: Option<i64>,
    #[serde(default)]
    resources: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/tasks",
    params(("name" = String, Path, description = "Name")),
    request_body = TaskBody,
    responses(
        (status = 201, description = "201 Task", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn create_task(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: web::Json<TaskBody>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let b = body.into_inner();
    let mut v = Vec::new();
    input::text("title", &b.title, true, input::MAX_TITLE, &mut v);
    input::text(
        "description",
        &b.description,
        false,
        input::MAX_DESCRIPTION,
        &mut v,
    );
    let mut errors: Vec<FieldError> = v.into_iter().map(field).collect();
    let required = input::labels(&b.required_competencies)
        .map_err(|m| errors.push(FieldError::body("required_competencies", m)));
    let resources = input::paths(&b.resources, input::MAX_LIST)
        .map_err(|m| errors.push(FieldError::body("resources", m)));
    let priority = input::priority(b.priority.as_ref())
        .map_err(|m| errors.push(FieldError::body("priority", m)));
    let (Ok(required), Ok(resources), Ok(priority), true) =
        (required, resources, priority, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };
    let new = NewTask {
        title: b.title.trim().to_owned(),
        description: b.description,
        required_competencies: required,
        priority,
        assigned_agent_id: b.assigned_agent_id,
        resources,
        created_by_user: Some(user.0.sub.clone()),
        created_by_agent: None,
    };
    let task = tasks::create(&state.circles, circle_path(&name)?, &new)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Created().json(task))
}

#[utoipa::path(
    get,
    path = "/circles/{name}/tasks/{task_id}",
    params(("name" = String, Path, description = "Name"), ("task_id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Task", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn get_task(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (name, task_id) = path.into_inner();
    let task = tasks::get(&state.circles, circle_path(&name)?, task_id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(task))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SubmitBody {
    result: String,
    #[serde(default)]
    files_modified: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/tasks/{task_id}/submit",
    params(("name" = String, Path, description = "Name"), ("task_id" = i64, Path, description = "Task id")),
    request_body = SubmitBody,
    responses(
        (status = 200, description = "Task", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn submit(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(String, i64)>,
    body: web::Json<SubmitBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, task_id) = path.into_inner();
    let b = body.into_inner();
    let mut v = Vec::new();
    input::text("result", &b.result, false, input::MAX_RESULT, &mut v);
    let mut errors: Vec<FieldError> = v.into_iter().map(field).collect();
    let files = input::paths(&b.files_modified, input::MAX_PATHS)
        .map_err(|m| errors.push(FieldError::body("files_modified", m)));
    let (Ok(files), true) = (files, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let task = tasks::submit(
        &state.circles,
        circle_path(&name)?,
        task_id,
        &b.result,
        &files,
    )
    .await
    .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(task))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ApproveQuery {
    reviewer_id: String,
    #[serde(default)]
    comments: String,
    /// 0..1, optional.
    quality_score: Option<f64>,
}

fn check_review(
    reviewer: &str,
    text_field: &str,
    text: &str,
    quality: Option<f64>,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if reviewer.trim().is_empty() || reviewer.chars().count() > 100 {
        errors.push(FieldError::query(
            "reviewer_id",
            "String should have 1 to 100 characters",
        ));
    }
    if text.chars().count() > input::MAX_COMMENTS {
        errors.push(FieldError::query(
            text_field,
            format!(
                "String should have at most {} characters",
                input::MAX_COMMENTS
            ),
        ));
    }
    if quality.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
        errors.push(FieldError::query(
            "quality_score",
            "Input should be between 0 and 1",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[utoipa::path(
    post,
    path = "/circles/{name}/tasks/{task_id}/approve",
    params(("name" = String, Path, description = "Name"), ("task_id" = i64, Path, description = "Task id"), ApproveQuery),
    responses(
        (status = 200, description = "`{status:\"approved\", task_id}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn approve(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
    q: web::Query<ApproveQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, task_id) = path.into_inner();
    check_review(&q.reviewer_id, "comments", &q.comments, q.quality_score)?;
    let verdict = Verdict {
        approved: true,
        comments: q.comments.clone(),
        quality: q.quality_score,
    };
    let applied = review::human(
        &state.circles,
        circle_path(&name)?,
        task_id,
        &q.reviewer_id,
        &user.0.sub,
        &verdict,
    )
    .await
    .map_err(circle_error)?;
    if applied == Applied::Stale {
        return Err(ApiError::BadRequest("Task must be in review".into()));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "approved", "task_id": task_id})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RejectQuery {
    reviewer_id: String,
    reason: String,
    quality_score: Option<f64>,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/tasks/{task_id}/reject",
    params(("name" = String, Path, description = "Name"), ("task_id" = i64, Path, description = "Task id"), RejectQuery),
    responses(
        (status = 200, description = "`{status:\"rejected\", task_id}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn reject(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
    q: web::Query<RejectQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, task_id) = path.into_inner();
    check_review(&q.reviewer_id, "reason", &q.reason, q.quality_score)?;
    if q.reason.trim().is_empty() {
        return Err(invalid(
            "query",
            "reason",
            "String should have at least 1 character",
        ));
    }
    let verdict = Verdict {
        approved: false,
        comments: q.reason.clone(),
        quality: q.quality_score,
    };
    let applied = review::human(
        &state.circles,
        circle_path(&name)?,
        task_id,
        &q.reviewer_id,
        &user.0.sub,
        &verdict,
    )
    .await
    .map_err(circle_error)?;
    if applied == Applied::Stale {
        return Err(ApiError::BadRequest("Task must be in review".into()));
    }
    Ok(HttpResponse::Ok().json(json!({
        "status": "rejected",
        "task_id": task_id,
        "escalated": applied == Applied::Escalated,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AssignQuery {
    agent_id: i64,
}

#[utoipa::path(
    post,
    path = "/circles/{name}/tasks/{task_id}/assign",
    params(("name" = String, Path, description = "Name"), ("task_id" = i64, Path, description = "Task id"), AssignQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub(super) async fn assign(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<(String, i64)>,
    q: web::Query<AssignQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, task_id) = path.into_inner();
    let task = tasks::assign(&state.circles, circle_path(&name)?, task_id, q.agent_id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(task))
}
