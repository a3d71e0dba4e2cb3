//! Git reads and writes of the workspace, through the one git layer.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use gathering_tools::git::GitError;
use gathering_tools::git::history::{self, DiffQuery, LogQuery};
use gathering_tools::git::ops::{self, CommitInput, RemoteInput};
use gathering_tools::git::remote::check_configured_remote;
use gathering_tools::git::status::{self, Entry, Status};
use gathering_tools::{Permission, ProjectRoot};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::files::{open, record};
use super::git_error;
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

/// The git status of `root`, from the edge's cache when nothing changed since; `true` when
/// it was a cache hit.
pub(super) async fn cached_status(
    state: &AppState,
    root: &ProjectRoot,
) -> Result<(Arc<Status>, bool), GitError> {
    let cache = &state.workspace.cache;
    let ticket = cache.begin(root.path()).await;
    if let Some(s) = cache.status(root.path()) {
        return Ok((s, true));
    }
    let s = Arc::new(status::status(root).await?);
    cache.put_status(root.path(), ticket, s.clone());
    Ok((s, false))
}

fn limit_1_200(limit: Option<u32>) -> Result<u32, ApiError> {
    let l = limit.unwrap_or(50);
    if (1..=200).contains(&l) {
        Ok(l)
    } else {
        Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "limit must be 1 to 200",
        )]))
    }
}

/// The repository's status: `{status: {is_git_repo, branch, upstream, ahead, behind,
/// modified, added, deleted, untracked, conflicted, staged {modified, added, deleted}, clean}}`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/status",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    responses(
        (status = 200, description = "The status", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn status(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    let (s, hit) = cached_status(&state, &root).await.map_err(git_error)?;
    let not_conflicted = |f: fn(&Entry) -> bool| s.paths(move |e: &Entry| !e.conflicted() && f(e));
    let body = json!({"status": {
        "is_git_repo": true,
        "branch": s.branch,
        "upstream": s.upstream,
        "ahead": s.ahead,
        "behind": s.behind,
        "modified": not_conflicted(|e| matches!(e.index, 'M' | 'T') || matches!(e.worktree, 'M' | 'T')),
        "added": not_conflicted(|e| e.index == 'A'),
        "deleted": not_conflicted(|e| e.index == 'D' || e.worktree == 'D'),
        "untracked": s.paths(Entry::untracked),
        "conflicted": s.paths(Entry::conflicted),
        "staged": {
            "modified": not_conflicted(|e| matches!(e.index, 'M' | 'R' | 'C' | 'T')),
            "added": not_conflicted(|e| e.index == 'A'),
            "deleted": not_conflicted(|e| e.index == 'D'),
        },
        "clean": s.clean(),
    }});
    Ok(HttpResponse::Ok()
        .insert_header(("X-Workspace-Cache", if hit { "hit" } else { "miss" }))
        .json(body))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommitsQuery {
    /// 1 to 200 (default 50).
    limit: Option<u32>,
    /// The branch or revision (default HEAD).
    branch: Option<String>,
    /// Only this author's commits.
    author: Option<String>,
}

/// The latest commits with their files (`[]` when the folder is not a repository).
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/commits",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        CommitsQuery,
    ),
    responses(
        (status = 200, description = "The commits", body = Vec<Object>),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn commits(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CommitsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = limit_1_200(q.limit)?;
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    let query = LogQuery {
        limit,
        rev: q.branch.filter(|b| !b.is_empty()),
        path: None,
        author: q.author,
        with_files: true,
    };
    match history::log(&root, &query).await {
        Ok(c) => Ok(HttpResponse::Ok().json(c)),
        Err(GitError::NotARepository) => Ok(HttpResponse::Ok().json(json!([]))),
        Err(e) => Err(git_error(e)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The commit to show (default the working tree's changes).
    commit: Option<String>,
    /// Only this file.
    file_path: Option<String>,
}

/// A diff: `{diff: {diff, commit, file, truncated}}`, or `{diff: {error}}` when git could not
/// make it.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/diff",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        DiffParams,
    ),
    responses(
        (status = 200, description = "The diff", body = Object),
        (status = 400, description = "File path outside project", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn diff(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<DiffParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    let query = DiffQuery {
        commit: q.commit.clone().filter(|c| !c.is_empty()),
        staged: false,
        path: q.file_path.clone().filter(|p| !p.is_empty()),
        stat: false,
    };
    let body = match history::diff(&root, &query).await {
        Ok((diff, truncated)) => json!({"diff": {
            "diff": diff, "commit": query.commit, "file": query.path, "truncated": truncated,
        }}),
        Err(e @ GitError::Path(_)) => return Err(git_error(e)),
        Err(GitError::NotARepository) => json!({"diff": {"error": "Not a git repository"}}),
        Err(e) => json!({"diff": {"error": e.to_string()}}),
    };
    Ok(HttpResponse::Ok().json(body))
}

/// The branches: `{branches: {current, branches}}`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/branches",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    responses(
        (status = 200, description = "The branches", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn branches(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    match ops::branches(&root).await {
        Ok(b) => Ok(HttpResponse::Ok().json(json!({"branches": b}))),
        Err(GitError::NotARepository) => {
            Ok(HttpResponse::Ok().json(json!({"branches": {"current": null, "branches": []}})))
        }
        Err(e) => Err(git_error(e)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The file, relative to the project's folder.
    file_path: String,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The commits that changed a file: `hash`, `author`, `timestamp`, `date`, `message`, `file`.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/file-history",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The file's commits", body = Vec<Object>),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn file_history(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = limit_1_200(q.limit)?;
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    let query = LogQuery {
        limit,
        path: Some(q.file_path.clone()),
        ..LogQuery::default()
    };
    match history::log(&root, &query).await {
        Ok(commits) => {
            let list: Vec<Value> = commits
                .into_iter()
                .map(|c| {
                    json!({"hash": c.hash, "author": c.author_name, "timestamp": c.timestamp,
                           "date": c.date, "message": c.message, "file": q.file_path})
                })
                .collect();
            Ok(HttpResponse::Ok().json(list))
        }
        Err(GitError::NotARepository) => Ok(HttpResponse::Ok().json(json!([]))),
        Err(e) => Err(git_error(e)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// 1 to 200 (default 50).
    limit: Option<u32>,
    /// Every branch's commits (default true).
    all_branches: Option<bool>,
}

/// The commit graph: `{total, commits}`, each commit with its parents and refs.
#[utoipa::path(
    get,
    path = "/workspace/{project_id}/git/graph",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        GraphQuery,
    ),
    responses(
        (status = 200, description = "The graph", body = Object),
        (status = 400, description = "Refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project, or not a git repository", body = Detail),
    ),
)]
pub async fn graph(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<GraphQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit_1_200(q.limit)?;
    let root = open(&state, &user, *id, &[Permission::Read, Permission::Git]).await?;
    match history::graph(&root, limit, q.all_branches.unwrap_or(true)).await {
        Ok(commits) => {
            Ok(HttpResponse::Ok().json(json!({"total": commits.len(), "commits": commits})))
        }
        Err(GitError::NotARepository) => Err(ApiError::NotFound("Not a git repository".into())),
        Err(e) => Err(git_error(e)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesBody {
    /// Paths relative to the project's folder.
    files: Vec<String>,
}

async fn stage_or_unstage(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    files: &[String],
    stage: bool,
) -> Result<HttpResponse, ApiError> {
    let root = open(state, user, id, &[Permission::Write, Permission::Git]).await?;
    let result = if stage {
        ops::stage(&root, files).await
    } else {
        ops::unstage(&root, files).await
    };
    state.workspace.cache.invalidate(root.path());
    let files = result.map_err(git_error)?;
    Ok(HttpResponse::Ok().json(json!({"success": true, "files": files})))
}

/// Stages files.
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/git/stage",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = FilesBody,
    responses(
        (status = 200, description = "`{success, files}`", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn stage(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<FilesBody>,
) -> Result<HttpResponse, ApiError> {
    stage_or_unstage(&state, &user, *id, &body.files, true).await
}

/// Unstages files.
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/git/unstage",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = FilesBody,
    responses(
        (status = 200, description = "`{success, files}`", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
pub async fn unstage(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<FilesBody>,
) -> Result<HttpResponse, ApiError> {
    stage_or_unstage(&state, &user, *id, &body.files, false).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// 1 to 10000 bytes.
    message: String,
    author_name: Option<String>,
    author_email: Option<String>,
}

/// Commits the staged changes: `{success, message, hash, output}`.
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/git/commit",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = CommitBody,
    responses(
        (status = 200, description = "The commit", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
        (status = 500, description = "git refused (nothing to commit…), with git's message", body = Detail),
    ),
)]
pub async fn commit(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<CommitBody>,
) -> Result<HttpResponse, ApiError> {
    let id = *id;
    let b = body.into_inner();
    if b.message.trim().is_empty() || b.message.len() > 10_000 {
        return Err(ApiError::Validation(vec![FieldError::body(
            "message",
            "message must be 1 to 10000 bytes",
        )]));
    }
    let root = open(&state, &user, id, &[Permission::Write, Permission::Git]).await?;
    let input = CommitInput {
        message: b.message.clone(),
        author_name: b.author_name,
        author_email: b.author_email,
        allow_empty: false,
    };
    let result = ops::commit(&root, &input).await;
    state.workspace.cache.invalidate(root.path());
    let done = result.map_err(git_error)?;
    record(
        &state,
        &user,
        id,
        "commit",
        json!({"hash": done.hash, "message": b.message}),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({
        "success": true, "message": b.message, "hash": done.hash, "output": done.output,
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteBody {
    /// Default `origin`.
    remote: Option<String>,
    /// Default the current branch.
    branch: Option<String>,
    /// Push only: set the branch's upstream (default false).
    set_upstream: Option<bool>,
}

impl RemoteBody {
    /// The input for the git layer, once every URL the remote uses has passed the same checks
    /// as the agents' git tools (http(s) through the outbound guard and pinned to the checked
    /// addresses, local repositories only inside the project roots, no other transport); also
    /// returns the settings git runs with.
    async fn checked(
        self,
        state: &AppState,
        root: &ProjectRoot,
        push: bool,
    ) -> Result<(RemoteInput, Vec<String>), ApiError> {
        let remote = self.remote.unwrap_or_else(|| "origin".into());
        let config = check_configured_remote(
            root,
            &remote,
            push,
            state.tools.http().guard(),
            &state.tools.config().project_roots,
        )
        .await
        .map_err(git_error)?;
        let local = config.iter().any(|c| c == "protocol.file.allow=always");
        let input = RemoteInput {
            remote,
            branch: self.branch.filter(|b| !b.is_empty()),
            set_upstream: self.set_upstream.unwrap_or(false),
            allow_local_remotes: local,
        };
        Ok((input, config))
    }
}

/// Pushes to a remote (its URLs checked like the agents' git tools).
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/git/push",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = RemoteBody,
    responses(
        (status = 200, description = "`{success, remote, branch, output}`", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
        (status = 500, description = "git failed (remote refused, unreachable…), with git's message", body = Detail),
    ),
)]
pub async fn push(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RemoteBody>,
) -> Result<HttpResponse, ApiError> {
    let root = open(&state, &user, *id, &[Permission::Git, Permission::Network]).await?;
    let (input, config) = body.into_inner().checked(&state, &root, true).await?;
    let result = ops::push_with(&root, &input, config).await;
    state.workspace.cache.invalidate(root.path());
    let done = result.map_err(git_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true, "remote": done.remote, "branch": done.branch, "output": done.output,
    })))
}

/// Pulls from a remote (its URLs checked like the agents' git tools).
#[utoipa::path(
    post,
    path = "/workspace/{project_id}/git/pull",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = RemoteBody,
    responses(
        (status = 200, description = "`{success, remote, branch, output}`", body = Object),
        (status = 400, description = "Not a git repository, or refused input", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project", body = Detail),
        (status = 500, description = "git failed (remote refused, unreachable…), with git's message", body = Detail),
    ),
)]
pub async fn pull(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RemoteBody>,
) -> Result<HttpResponse, ApiError> {
    let needed = [Permission::Write, Permission::Git, Permission::Network];
    let root = open(&state, &user, *id, &needed).await?;
    let (input, config) = body.into_inner().checked(&state, &root, false).await?;
    let result = ops::pull_with(&root, &input, config).await;
    state.workspace.cache.invalidate(root.path());
    let done = result.map_err(git_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true, "remote": done.remote, "branch": done.branch, "output": done.output,
    })))
}
