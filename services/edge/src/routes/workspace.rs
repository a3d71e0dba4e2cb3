//! `/workspace/{project_id}/…` (contract §2.16, 21 routes): a project's files, git, activities
//! and Python runs for the dashboard's Workspace page.
//!
//! Paths are confined by the same code as the agents' file tools (`gathering_tools::files`,
//! `ProjectRoot`): NUL bytes, absolute paths, `..` (raw or percent-encoded once or twice) and
//! symlink escapes are refused — 403 on `file/raw`, 400 "File path outside project" on the
//! other file routes, as the contract has it. Git goes through the one git layer
//! (`gathering_tools::git`). Permissions follow the tools' rule (admins: all; other users:
//! `GATHERING_TOOL_GRANTS`): reads need `read`, writes `write`, deletes `delete`, git changes
//! `git`, push and pull also `network`; running code also needs `GATHERING_WORKSPACE_EXEC`.

mod activities;
mod files;
mod git;

use actix_web::web;
use gathering_tools::ToolError;
use gathering_tools::git::GitError;

use crate::error::ApiError;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    files::info,
    files::tree,
    files::read,
    files::write,
    files::delete,
    files::raw,
    git::status,
    git::commits,
    git::diff,
    git::branches,
    git::file_history,
    git::graph,
    git::stage,
    git::unstage,
    git::commit,
    git::push,
    git::pull,
    activities::list,
    activities::create,
    activities::stats,
    activities::run_python
))]
pub(crate) struct Api;

/// Largest JSON body of `PUT …/file` (the content is at most 10 MiB; JSON escaping adds some).
const FILE_BODY_LIMIT: usize = 12 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `PUT …/file` reads its larger body with `files::FileBody`, so every route keeps the
    // literal-path form the OpenAPI coverage test reads.
    cfg.route("/workspace/{project_id}/info", web::get().to(files::info))
        .route("/workspace/{project_id}/files", web::get().to(files::tree))
        .route("/workspace/{project_id}/file", web::get().to(files::read))
        .route("/workspace/{project_id}/file", web::put().to(files::write))
        .route(
            "/workspace/{project_id}/file",
            web::delete().to(files::delete),
        )
        .route(
            "/workspace/{project_id}/file/raw",
            web::get().to(files::raw),
        )
        .route(
            "/workspace/{project_id}/git/status",
            web::get().to(git::status),
        )
        .route(
            "/workspace/{project_id}/git/commits",
            web::get().to(git::commits),
        )
        .route("/workspace/{project_id}/git/diff", web::get().to(git::diff))
        .route(
            "/workspace/{project_id}/git/branches",
            web::get().to(git::branches),
        )
        .route(
            "/workspace/{project_id}/git/file-history",
            web::get().to(git::file_history),
        )
        .route(
            "/workspace/{project_id}/git/graph",
            web::get().to(git::graph),
        )
        .route(
            "/workspace/{project_id}/git/stage",
            web::post().to(git::stage),
        )
        .route(
            "/workspace/{project_id}/git/unstage",
            web::post().to(git::unstage),
        )
        .route(
            "/workspace/{project_id}/git/commit",
            web::post().to(git::commit),
        )
        .route(
            "/workspace/{project_id}/git/push",
            web::post().to(git::push),
        )
        .route(
            "/workspace/{project_id}/git/pull",
            web::post().to(git::pull),
        )
        .route(
            "/workspace/{project_id}/activities",
            web::get().to(activities::list),
        )
        .route(
            "/workspace/{project_id}/activities",
            web::post().to(activities::create),
        )
        .route(
            "/workspace/{project_id}/activities/stats",
            web::get().to(activities::stats),
        )
        .route(
            "/workspace/{project_id}/run-python",
            web::post().to(activities::run_python),
        );
}

/// A file-route error: a refused path is 400 "File path outside project" (contract).
fn file_error(e: ToolError) -> ApiError {
    match e {
        ToolError::Refused(m) => ApiError::BadRequest(format!("File path outside project: {m}")),
        ToolError::Missing(m) => ApiError::NotFound(format!("File not found: {m}")),
        ToolError::InvalidInput(m) | ToolError::TooLarge(m) => ApiError::BadRequest(m),
        ToolError::Db(m) => ApiError::Internal(m),
        other => ApiError::Failed(other.to_string()),
    }
}

/// Git errors: not a repository and bad input are 400, git's own failures 500 with git's
/// message (credentials already redacted by the git layer). A path git does not know (`git add
/// nothing.txt`) is the client's mistake: 400 with git's message.
fn git_error(e: GitError) -> ApiError {
    match e {
        GitError::NotARepository => ApiError::BadRequest("Not a git repository".into()),
        GitError::Invalid(m) => ApiError::BadRequest(m),
        GitError::Failed(m) if m.contains("did not match any file") => ApiError::BadRequest(m),
        GitError::Path(p) => file_error(p),
        other => ApiError::Failed(other.to_string()),
    }
}
