//! Info, file tree, and reading, writing and deleting files.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use gathering_tools::files::{self as fs, Content, MAX_FILE_BYTES, WriteMode};
use gathering_tools::{Permission, ProjectRoot, ToolError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{FILE_BODY_LIMIT, file_error, git::cached_status};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations, extractor_error};
use crate::openapi::Detail;
use crate::state::AppState;
use crate::workspace::{activities, info as info_mod, project_root, require, tree as tree_mod};

/// The project's root after the permission check.
pub(super) async fn open(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    needed: &[Permission],
) -> Result<ProjectRoot, ApiError> {
    require(state, user, needed)?;
    project_root(state, id).await
}

fn epoch(meta: &std::fs::Metadata) -> Option<f64> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Marks a response as served from the edge's cache or not.
fn cache_header(hit: bool) -> (&'static str, &'static str) {
    ("X-Workspace-Cache", if hit { "hit" } else { "miss" })
}

/// What the project's folder holds: `type`, `path`, `name`, `file_count`, `size_bytes`,
/// `size_mb`, `is_git_repo`, `capabilities`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/info",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    responses(
        (status = 200, description = "The workspace's summary", body = Object),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn info(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Read]).await?;
    let is_repo = gathering_tools::git::is_repo(&root).await.unwrap_or(false);
    let path = root.path().to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let value = web::block(move || info_mod::info(&path, &name, is_repo))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(value))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TreeQuery {
    /// Each entry's git status (default true).
    include_git_status: Option<bool>,
    /// 1 to 20 (default 10).
    max_depth: Option<u32>,
}

/// The project's file tree: nested `{name, path, type, git_status?, size?, children?}`, with
/// `truncated` when it was cut. `X-Workspace-Cache` says whether the edge's cache answered.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/files",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        TreeQuery,
    ),
    responses(
        (status = 200, description = "The tree", body = Object),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn tree(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<TreeQuery>,
) -> Result<HttpResponse, ApiError> {
    let depth = q.max_depth.unwrap_or(10);
    if !(1..=20).contains(&depth) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "max_depth",
            "max_depth must be 1 to 20",
        )]));
    }
    let with_git = q.include_git_status.unwrap_or(true);
    let root = open(&state, &user, *id, &[Permission::Read]).await?;
    let cache = &state.workspace.cache;
    let ticket = cache.begin(root.path()).await;
    if let Some(tree) = cache.tree(root.path(), (depth, with_git)) {
        return Ok(HttpResponse::Ok()
            .insert_header(cache_header(true))
            .json(tree.as_ref()));
    }
    let git: HashMap<String, String> = if with_git {
        match cached_status(&state, &root).await {
            Ok((s, _)) => s
                .entries
                .iter()
                .map(|e| (e.path.clone(), e.code()))
                .collect(),
            // Not a repository (or git failing): the tree without statuses.
            Err(_) => HashMap::new(),
        }
    } else {
        HashMap::new()
    };
    let path = root.path().to_path_buf();
    let tree = web::block(move || tree_mod::build(&path, depth, &git))
        .await
        .map_err(ApiError::internal)?;
    let tree = Arc::new(tree);
    cache.put_tree(root.path(), ticket, (depth, with_git), tree.clone());
    Ok(HttpResponse::Ok()
        .insert_header(cache_header(false))
        .json(tree.as_ref()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// The file, relative to the project's folder.
    path: String,
}

/// A text file's content (`path`, `type: text`, `mime_type`, `encoding`, `size`, `lines`,
/// `modified`, `content`) or, for a binary file, `{path, type: binary, size, error}`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/file",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        PathQuery,
    ),
    responses(
        (status = 200, description = "The file", body = Object),
        (status = 400, description = "File path outside project, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
    ),
)]
pub async fn read(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Read]).await?;
    let f = fs::read(&root, &q.path, MAX_FILE_BYTES)
        .await
        .map_err(file_error)?;
    let size = f.meta.len();
    Ok(HttpResponse::Ok().json(match f.content {
        Content::Binary => json!({
            "path": f.rel, "type": "binary", "size": size,
            "error": "Binary file - cannot display content",
        }),
        Content::Text {
            truncated: true, ..
        } => {
            return Err(ApiError::BadRequest(format!(
                "File is larger than {MAX_FILE_BYTES} bytes: download it with file/raw"
            )));
        }
        Content::Text { text, .. } => json!({
            "path": f.rel,
            "type": "text",
            "mime_type": mime_or_text(&f.abs),
            "encoding": "utf-8",
            "size": size,
            "lines": text.split('\n').count(),
            "modified": epoch(&f.meta),
            "content": text,
        }),
    }))
}

fn mime_or_text(abs: &std::path::Path) -> String {
    let m = tree_mod::mime_of(abs);
    if m == "application/octet-stream" {
        "text/plain".into()
    } else {
        m
    }
}

/// The file's bytes with their content type (inline).
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/file/raw",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        PathQuery,
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "*/*", body = Vec<u8>),
        (status = 400, description = "The file cannot be read", body = Detail),
        (status = 403, description = "Missing permission, or the path is outside the project", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
    ),
)]
pub async fn raw(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Read]).await?;
    let (abs, bytes) = fs::read_bytes(&root, &q.path).await.map_err(|e| match e {
        ToolError::Refused(m) => ApiError::Forbidden(format!("Access denied: {m}")),
        other => file_error(other),
    })?;
    let name: String = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n') && !c.is_control())
        .collect();
    Ok(HttpResponse::Ok()
        .content_type(tree_mod::mime_of(&abs))
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"{name}\""),
        ))
        .body(bytes))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// The file's new content (at most 10 MiB).
    content: String,
    /// Keep a copy of the old content first (default true).
    create_backup: Option<bool>,
}

/// The body of `PUT …/file`: read as `web::Json` reads it (JSON content type required, errors
/// in the contract's 422 shape), with a larger limit than the app's.
pub struct FileBody(WriteBody);

impl FromRequest for FileBody {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::JsonBody::<WriteBody>::new(req, payload, None, true).limit(FILE_BODY_LIMIT);
        let fail = extractor_error("body");
        Box::pin(async move { body.await.map(FileBody).map_err(|e| fail(e.to_string())) })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Written {
    success: bool,
    path: String,
    /// Where the old content was copied, if it was.
    backup: Option<String>,
    size: usize,
    lines: usize,
}

/// Writes a file (creating it and its folders when needed).
#[utoipa::path(
    put,
    path = "/workspace/{project_id}/file",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        PathQuery,
    ),
    request_body = WriteBody,
    responses(
        (status = 200, description = "Written", body = Written),
        (status = 400, description = "File path outside project, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
    ),
)]
pub async fn write(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<PathQuery>,
    FileBody(body): FileBody,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    Violations::new()
        .check(
            body.content.len() <= MAX_FILE_BYTES,
            "content",
            "content is larger than 10 MiB",
        )
        .finish()?;
    let root = open(&state, &user, id, &[Permission::Write]).await?;
    let backup = if body.create_backup.unwrap_or(true) {
        fs::backup(&root, &q.path).await.map_err(file_error)?
    } else {
        None
    };
    let written = fs::write(
        &root,
        &q.path,
        body.content.as_bytes(),
        WriteMode::Overwrite,
        true,
    )
    .await;
    state.workspace.cache.invalidate(root.path());
    let written = written.map_err(file_error)?;
    let kind = if written.created {
        "file_created"
    } else {
        "file_edited"
    };
    record(
        &state,
        &user,
        id,
        kind,
        json!({"path": written.rel, "size": body.content.len()}),
    )
    .await;
    Ok(HttpResponse::Ok().json(Written {
        success: true,
        path: written.rel,
        backup,
        size: body.content.len(),
        lines: body.content.split('\n').count(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    success: bool,
    path: String,
    deleted: bool,
}

/// Deletes a file.
#[utoipa::path(
    delete,
    path = "/workspace/{project_id}/file",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        PathQuery,
    ),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 400, description = "File path outside project, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission, or the project's folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
    ),
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let root = open(&state, &user, id, &[Permission::Delete]).await?;
    let result = fs::delete(&root, &q.path, false).await;
    state.workspace.cache.invalidate(root.path());
    let rel = result.map_err(file_error)?;
    record(&state, &user, id, "file_deleted", json!({"path": rel})).await;
    Ok(HttpResponse::Ok().json(Deleted {
        success: true,
        path: rel,
        deleted: true,
    }))
}

/// Records what the caller did; a failure is logged, never the request's (the change is made).
pub(super) async fn record(
    state: &AppState,
    user: &AuthUser,
    project_id: i64,
    kind: &str,
    details: Value,
) {
    let a = activities::NewActivity {
        project_id,
        agent_id: None,
        activity_type: kind,
        details,
        created_by: Some(user.0.sub.as_str()),
    };
    if let Err(e) = activities::record(&state.pool, a).await {
        tracing::warn!(error = %e, project_id, kind, "workspace activity not recorded");
    }
}
