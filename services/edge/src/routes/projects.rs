//! `/projects` (contract §2.13): projects persisted in `project.projects`, stack
//! auto-detection, circle links, prompt context, and the folder browser. The data access and
//! detection live in `gathering_tools::project`; this module maps HTTP to it.

mod circles;

use std::path::{Path, PathBuf};

use actix_web::{HttpResponse, web};
use gathering_tools::project::browse::{self, is_forbidden};
use gathering_tools::project::detect::{Detection, detect};
use gathering_tools::project::store::{self, NewProject, ProjectPatch};
use gathering_tools::project::{Project, ProjectError, ProjectRoots};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError, Violations, has_nul};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    browse_folders,
    get,
    update,
    delete,
    circles::circles,
    circles::link_circle,
    circles::unlink_circle,
    refresh,
    context
))]
pub(crate) struct Api;

/// The 200 description of the operations answering one such object (it names the fields).
const PROJECT: &str = "The project: `id`, `name`, `display_name`, `path`, `repository_path`, `description`, `repository_url`, `branch`, `status`, `tech_stack`, `languages`, `frameworks`, `venv_path`, `python_version`, `tools`, `conventions`, `key_files`, `commands`, `notes`, `quality_standards`, `circle_count`, `created_at`, `updated_at`";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects", web::get().to(list))
        .route("/projects", web::post().to(create))
        .route("/projects/browse/folders", web::get().to(browse_folders))
        .route("/projects/{project_id}", web::get().to(get))
        .route("/projects/{project_id}", web::patch().to(update))
        .route("/projects/{project_id}", web::delete().to(delete))
        .route(
            "/projects/{project_id}/circles",
            web::get().to(circles::circles),
        )
        .route(
            "/projects/{project_id}/circles/{circle_id}",
            web::post().to(circles::link_circle),
        )
        .route(
            "/projects/{project_id}/circles/{circle_id}",
            web::delete().to(circles::unlink_circle),
        )
        .route("/projects/{project_id}/refresh", web::post().to(refresh))
        .route("/projects/{project_id}/context", web::get().to(context));
}

fn api(e: ProjectError) -> ApiError {
    match e {
        ProjectError::NotFound(_) | ProjectError::Missing(_) => ApiError::NotFound(e.to_string()),
        ProjectError::Invalid(m) => ApiError::BadRequest(m),
        ProjectError::Forbidden(m) => ApiError::Forbidden(m),
        ProjectError::Conflict(m) => ApiError::Conflict(m),
        ProjectError::Db(m) => ApiError::Internal(m),
    }
}

/// The project store keeps database errors as text, so input the database would refuse (a NUL
/// character, which PostgreSQL text and JSONB cannot hold) is refused here first.
const NUL_MSG: &str = "must not contain the NUL character (\\u0000)";

fn text_has_nul(v: Option<&String>) -> bool {
    v.is_some_and(|s| s.contains('\0'))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("Project {id} not found"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::internal)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only the projects of this status.
    status: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ProjectList {
    total: usize,
    /// Each project (see `GET /projects/{project_id}`).
    projects: Vec<Value>,
}

/// Every project.
#[utoipa::path(
    get,
    path = "/projects",
    params(ListQuery),
    responses((status = 200, description = "The projects", body = ProjectList)),
)]
async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if text_has_nul(q.status.as_ref()) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "status", NUL_MSG,
        )]));
    }
    let client = state.pool.get().await?;
    let projects: Vec<_> = store::list(&client, q.status.as_deref())
        .await
        .map_err(api)?
        .iter()
        .map(Project::to_json)
        .collect();
    Ok(HttpResponse::Ok().json(ProjectList {
        total: projects.len(),
        projects,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// 1 to 200 characters.
    name: String,
    /// An absolute path of an existing folder inside the project roots.
    path: String,
    description: Option<String>,
    /// Detect the stack (languages, frameworks, tools); default true.
    auto_detect: Option<bool>,
}

/// The body of `PATCH /projects/{project_id}` (`gathering_tools::project::store::ProjectPatch`,
/// which has no schema of its own): absent fields are left unchanged, unknown ones refused.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ProjectUpdate {
    /// 1 to 200 characters.
    name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    /// 1 to 50 characters.
    status: Option<String>,
    venv_path: Option<String>,
    python_version: Option<String>,
    tools: Option<serde_json::Map<String, Value>>,
    conventions: Option<serde_json::Map<String, Value>>,
    key_files: Option<serde_json::Map<String, Value>>,
    commands: Option<serde_json::Map<String, Value>>,
    /// At most 500 notes.
    notes: Option<Vec<String>>,
}

/// Checks a folder can be a project root (it exists, is a directory, lies inside the project
/// roots) and returns its canonical path. Blocking.
fn project_dir(raw: &str, roots: &ProjectRoots) -> Result<PathBuf, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::BadRequest("Path contains a NUL byte".into()));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(ApiError::BadRequest(format!(
            "Path must be absolute: {raw}"
        )));
    }
    let canonical = std::fs::canonicalize(path)
        .map_err(|_| ApiError::BadRequest(format!("Path does not exist: {raw}")))?;
    if !canonical.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "Path is not a directory: {raw}"
        )));
    }
    if canonical == Path::new("/") || is_forbidden(&canonical) || canonical.starts_with("/etc") {
        return Err(ApiError::BadRequest(format!(
            "Path cannot be a project: {}",
            canonical.display()
        )));
    }
    roots.check(&canonical).map_err(api)?;
    Ok(canonical)
}

/// Creates a project on an existing folder, detecting its stack.
#[utoipa::path(
    post,
    path = "/projects",
    request_body = CreateBody,
    responses(
        (status = 201, description = PROJECT, body = Object),
        (status = 400, description = "The folder cannot be a project", body = Detail),
        (status = 403, description = "The folder is outside the project roots", body = Detail),
        (status = 409, description = "A project already uses the folder or name", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    _user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    Violations::new()
        .check(
            !body.name.trim().is_empty() && body.name.chars().count() <= 200,
            "name",
            "name must be 1 to 200 characters",
        )
        .check(
            !body.path.trim().is_empty() && body.path.len() <= 4096,
            "path",
            "path must be 1 to 4096 bytes",
        )
        .check(
            body.description.as_ref().is_none_or(|d| d.len() <= 20_000),
            "description",
            "description is too long",
        )
        .check(!body.name.contains('\0'), "name", NUL_MSG)
        .check(
            !text_has_nul(body.description.as_ref()),
            "description",
            NUL_MSG,
        )
        .finish()?;
    let raw = body.path.clone();
    let auto = body.auto_detect.unwrap_or(true);
    let roots = state.config.tools.project_roots.clone();
    let (dir, detection): (PathBuf, Option<Detection>) = blocking(move || {
        let dir = project_dir(&raw, &roots)?;
        let d = auto.then(|| detect(&dir));
        Ok::<_, ApiError>((dir, d))
    })
    .await??;
    let new = NewProject {
        name: body.name.trim().to_owned(),
        path: dir.to_string_lossy().into_owned(),
        description: body.description,
        detection,
    };
    let client = state.pool.get().await?;
    let project = store::create(&client, &new).await.map_err(api)?;
    Ok(HttpResponse::Created().json(project.to_json()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct BrowseQuery {
    /// The folder to list (default the workspace root or the first project root).
    path: Option<String>,
    /// List hidden folders too (default false).
    show_hidden: Option<bool>,
}

/// The sub-folders of a folder inside the project roots.
#[utoipa::path(
    get,
    path = "/projects/browse/folders",
    params(BrowseQuery),
    responses(
        (status = 200, description = "The folder's sub-folders, its parent and where it is", body = Object),
        (status = 400, description = "The path cannot be listed", body = Detail),
        (status = 403, description = "The path is outside the project roots", body = Detail),
        (status = 404, description = "No such folder", body = Detail),
    ),
)]
async fn browse_folders(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<BrowseQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    // Browsing stays inside the project roots; it starts at WORKSPACE_ROOT when that is inside
    // them, else at the first root.
    let roots = state.config.tools.project_roots.clone();
    let workspace = state.config.tools.workspace_root.clone();
    let listing = blocking(move || {
        let canonical = roots.canonical();
        let default = workspace
            .and_then(|w| std::fs::canonicalize(w).ok())
            .filter(|w| canonical.iter().any(|r| w.starts_with(r)))
            .or_else(|| canonical.first().cloned())
            .ok_or_else(|| ProjectError::Invalid("No project root exists on the server".into()))?;
        browse::browse_within(
            q.path.as_deref(),
            q.show_hidden.unwrap_or(false),
            &default,
            &canonical,
        )
    })
    .await?
    .map_err(api)?;
    Ok(HttpResponse::Ok().json(listing))
}

/// One project.
#[utoipa::path(
    get,
    path = "/projects/{project_id}",
    params(("project_id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = PROJECT, body = Object),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
async fn get(
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
    Ok(HttpResponse::Ok().json(p.to_json()))
}

/// Changes a project's fields.
#[utoipa::path(
    patch,
    path = "/projects/{project_id}",
    params(("project_id" = i64, Path, description = "Project id")),
    request_body = ProjectUpdate,
    responses(
        (status = 200, description = PROJECT, body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "No such project", body = Detail),
        (status = 409, description = "Another project has the name", body = Detail),
    ),
)]
async fn update(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<ProjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let patch = body.into_inner();
    let text_ok =
        |v: &Option<String>, max: usize| v.as_ref().is_none_or(|s| s.chars().count() <= max);
    let object_ok =
        |v: &Option<serde_json::Value>| v.as_ref().is_none_or(|v| v.is_object() && !has_nul(v));
    let mut v = Violations::new();
    for (field, value) in [
        ("name", &patch.name),
        ("display_name", &patch.display_name),
        ("description", &patch.description),
        ("status", &patch.status),
        ("venv_path", &patch.venv_path),
        ("python_version", &patch.python_version),
    ] {
        v.check(!text_has_nul(value.as_ref()), field, NUL_MSG);
    }
    v.check(
        patch
            .notes
            .as_ref()
            .is_none_or(|n| !n.iter().any(|s| s.contains('\0'))),
        "notes",
        NUL_MSG,
    );
    v.check(
        patch.name.as_ref().is_none_or(|n| !n.trim().is_empty()) && text_ok(&patch.name, 200),
        "name",
        "name must be 1 to 200 characters",
    )
    .check(
        text_ok(&patch.display_name, 200),
        "display_name",
        "display_name is too long",
    )
    .check(
        text_ok(&patch.description, 20_000),
        "description",
        "description is too long",
    )
    .check(
        patch
            .status
            .as_ref()
            .is_none_or(|s| !s.is_empty() && s.len() <= 50),
        "status",
        "status must be 1 to 50 characters",
    )
    .check(
        object_ok(&patch.tools),
        "tools",
        "tools must be an object (without NUL characters)",
    )
    .check(
        object_ok(&patch.conventions),
        "conventions",
        "conventions must be an object (without NUL characters)",
    )
    .check(
        object_ok(&patch.key_files),
        "key_files",
        "key_files must be an object (without NUL characters)",
    )
    .check(
        object_ok(&patch.commands),
        "commands",
        "commands must be an object (without NUL characters)",
    )
    .check(
        patch.notes.as_ref().is_none_or(|n| n.len() <= 500),
        "notes",
        "at most 500 notes",
    )
    .finish()?;
    let client = state.pool.get().await?;
    let p = store::update(&client, id, &patch)
        .await
        .map_err(api)?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

/// Deletes a project (its folder stays).
#[utoipa::path(
    delete,
    path = "/projects/{project_id}",
    params(("project_id" = i64, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let client = state.pool.get().await?;
    if !store::delete(&client, id).await.map_err(api)? {
        return Err(not_found(id));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Detects the project's stack again from its folder.
#[utoipa::path(
    post,
    path = "/projects/{project_id}/refresh",
    params(("project_id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = PROJECT, body = Object),
        (status = 400, description = "The project's folder is gone", body = Detail),
        (status = 403, description = "The folder is outside the project roots", body = Detail),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
async fn refresh(
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
    let path = p
        .root_path()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::BadRequest(format!("Project {id} has no path")))?;
    let roots = state.config.tools.project_roots.clone();
    let detection = blocking(move || {
        let dir = std::fs::canonicalize(&path)
            .map_err(|_| ApiError::BadRequest(format!("Project path no longer exists: {path}")))?;
        if !dir.is_dir() {
            return Err(ApiError::BadRequest(format!(
                "Project path no longer exists: {path}"
            )));
        }
        roots.check(&dir).map_err(api)?;
        Ok(detect(&dir))
    })
    .await??;
    let p = store::apply_detection(&client, id, &detection)
        .await
        .map_err(api)?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

#[derive(Serialize, ToSchema)]
struct ProjectContext {
    project_id: i64,
    project_name: String,
    /// The project as agent prompt context (Markdown).
    prompt_context: String,
    /// The project (see `GET /projects/{project_id}`).
    raw: Value,
}

/// The project as agents' prompt context.
#[utoipa::path(
    get,
    path = "/projects/{project_id}/context",
    params(("project_id" = i64, Path, description = "Project id")),
    responses(
        (status = 200, description = "The prompt context", body = ProjectContext),
        (status = 404, description = "No such project", body = Detail),
    ),
)]
async fn context(
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
    Ok(HttpResponse::Ok().json(ProjectContext {
        project_id: p.id,
        prompt_context: p.prompt_context(),
        raw: p.to_json(),
        project_name: p.name,
    }))
}
