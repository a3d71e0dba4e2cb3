//! `/lsp/{project_id}/…` (contract §2.17): completions, diagnostics, hover and definition from
//! real language servers (see [`crate::lsp`] for where they run and why any edge answers).

use actix_web::{HttpResponse, web};
use gathering_tools::Permission;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::lsp::{Language, LspServer, document, position};
use crate::openapi::Detail;
use crate::state::AppState;
use crate::workspace::{project_root, require};

/// Most completion items returned.
const MAX_ITEMS: usize = 500;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    initialize,
    completions,
    diagnostics,
    hover,
    definition,
    shutdown,
    status
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lsp/{project_id}/initialize", web::post().to(initialize))
        .route("/lsp/{project_id}/completions", web::post().to(completions))
        .route("/lsp/{project_id}/diagnostics", web::post().to(diagnostics))
        .route("/lsp/{project_id}/hover", web::post().to(hover))
        .route("/lsp/{project_id}/definition", web::post().to(definition))
        .route("/lsp/{project_id}/shutdown", web::delete().to(shutdown))
        .route("/lsp/{project_id}/status", web::get().to(status));
}

fn language(s: Option<&str>) -> Result<Language, ApiError> {
    let s = s.unwrap_or("python");
    Language::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Unsupported language: {}. Available: python, typescript, javascript, rust",
            s.chars().take(50).collect::<String>()
        ))
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `python` (default), `typescript`, `javascript` or `rust`.
    language: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitBody {
    /// `python`, `typescript`, `javascript` or `rust`.
    language: String,
    /// Ignored: the server always works in the project's own directory.
    #[serde(default)]
    workspace_path: Option<String>,
}

async fn server_for(
    state: &AppState,
    user: &AuthUser,
    project_id: i64,
    lang: Language,
) -> Result<(std::sync::Arc<LspServer>, gathering_tools::ProjectRoot), ApiError> {
    require(state, user, &[Permission::Read])?;
    let root = project_root(state, project_id).await?;
    let server = state.workspace.lsp.server(project_id, lang, &root).await?;
    Ok((server, root))
}

#[derive(Serialize, ToSchema)]
struct Initialized {
    /// `initialized`.
    status: &'static str,
    language: &'static str,
    /// The language server's capabilities.
    capabilities: Value,
}

/// Starts (or reuses) the project's language server for a language.
#[utoipa::path(
    post,
    path = "/lsp/{project_id}/initialize",
    params(
        ("project_id" = i64, Path, description = "Project id"),
    ),
    request_body = InitBody,
    responses(
        (status = 200, description = "The server is ready", body = Initialized),
        (status = 400, description = "Unsupported language, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
        (status = 503, description = "Too many language servers are busy", body = Detail),
    ),
)]
pub async fn initialize(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<InitBody>,
) -> Result<HttpResponse, ApiError> {
    Violations::new()
        .check(
            body.workspace_path.as_ref().is_none_or(|p| p.len() <= 4096),
            "workspace_path",
            "workspace_path is too long",
        )
        .finish()?;
    let lang = language(Some(&body.language))?;
    let (server, _) = server_for(&state, &user, *id, lang).await?;
    Ok(HttpResponse::Ok().json(Initialized {
        status: "initialized",
        language: lang.name(),
        capabilities: server.capabilities.clone(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PositionBody {
    /// The file, relative to the project's folder (1 to 4096 bytes).
    file_path: String,
    /// 1-based line (default 1).
    #[serde(default = "one")]
    line: u32,
    /// 0-based column (default 0).
    #[serde(default)]
    character: u32,
    /// The editor's unsaved content (at most 10 MiB); default the file on disk.
    content: Option<String>,
}

fn one() -> u32 {
    1
}

fn check(file_path: &str, content: Option<&String>) -> Result<(), ApiError> {
    Violations::new()
        .check(
            !file_path.is_empty() && file_path.len() <= 4096,
            "file_path",
            "file_path must be 1 to 4096 bytes",
        )
        .check(
            content.is_none_or(|c| c.len() <= gathering_tools::files::MAX_FILE_BYTES),
            "content",
            "content is larger than 10 MiB",
        )
        .finish()
}

/// Syncs the request's document and sends `method` at its position.
async fn at_position(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    q: &LangQuery,
    b: PositionBody,
    method: &str,
) -> Result<(Value, gathering_tools::ProjectRoot), ApiError> {
    check(&b.file_path, b.content.as_ref())?;
    let lang = language(q.language.as_deref())?;
    let (server, root) = server_for(state, user, id, lang).await?;
    let (abs, text) = document(&root, &b.file_path, b.content).await?;
    let (uri, _) = server.sync(&abs, text).await.map_err(ApiError::Failed)?;
    let params = json!({"textDocument": {"uri": uri}, "position": position(b.line, b.character)});
    let result = server
        .request(method, params)
        .await
        .map_err(ApiError::Failed)?;
    server.touch();
    Ok((result, root))
}

fn completion_item(item: &Value) -> Value {
    let documentation = match &item["documentation"] {
        Value::String(s) => json!(s),
        Value::Object(o) => o.get("value").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "label": item["label"],
        "kind": item["kind"],
        "detail": item["detail"],
        "documentation": documentation,
        "insert_text": item.get("insertText").cloned().unwrap_or_else(|| item["label"].clone()),
        "sort_text": item["sortText"],
    })
}

/// Completions at a position: `{count, completions}`, each `{label, kind, detail, documentation, insert_text, sort_text}`.
#[utoipa::path(
    post,
    path = "/lsp/{project_id}/completions",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    request_body = PositionBody,
    responses(
        (status = 200, description = "The completions", body = Object),
        (status = 400, description = "Unsupported language, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
        (status = 503, description = "Too many language servers are busy", body = Detail),
    ),
)]
pub async fn completions(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
    body: web::Json<PositionBody>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = at_position(
        &state,
        &user,
        *id,
        &q,
        body.into_inner(),
        "textDocument/completion",
    )
    .await?;
    let items = match &result {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => o
            .get("items")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => &[],
    };
    let list: Vec<Value> = items.iter().take(MAX_ITEMS).map(completion_item).collect();
    Ok(HttpResponse::Ok().json(json!({"count": list.len(), "completions": list})))
}

/// Hover information at a position: the server's `{contents, range?}`, `{contents: null}` when none.
#[utoipa::path(
    post,
    path = "/lsp/{project_id}/hover",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    request_body = PositionBody,
    responses(
        (status = 200, description = "The hover", body = Object),
        (status = 400, description = "Unsupported language, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
        (status = 503, description = "Too many language servers are busy", body = Detail),
    ),
)]
pub async fn hover(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
    body: web::Json<PositionBody>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = at_position(
        &state,
        &user,
        *id,
        &q,
        body.into_inner(),
        "textDocument/hover",
    )
    .await?;
    let empty = match &result["contents"] {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(str::is_empty),
        _ => false,
    };
    Ok(HttpResponse::Ok().json(if empty {
        json!({"contents": null})
    } else {
        result
    }))
}

/// Where the symbol at a position is defined: `{uri, range, path}` (`path` relative to the project when inside it), `{uri: null}` when unknown.
#[utoipa::path(
    post,
    path = "/lsp/{project_id}/definition",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    request_body = PositionBody,
    responses(
        (status = 200, description = "The definition", body = Object),
        (status = 400, description = "Unsupported language, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
        (status = 503, description = "Too many language servers are busy", body = Detail),
    ),
)]
pub async fn definition(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
    body: web::Json<PositionBody>,
) -> Result<HttpResponse, ApiError> {
    let (result, root) = at_position(
        &state,
        &user,
        *id,
        &q,
        body.into_inner(),
        "textDocument/definition",
    )
    .await?;
    // Location | Location[] | LocationLink[]: the first one, as a Location.
    let first = match result {
        Value::Array(a) => a.into_iter().next(),
        Value::Null => None,
        other => Some(other),
    };
    let Some(loc) = first else {
        return Ok(HttpResponse::Ok().json(json!({"uri": null})));
    };
    let (uri, range) = match loc.get("targetUri") {
        Some(u) => (u.clone(), loc["targetSelectionRange"].clone()),
        None => (loc["uri"].clone(), loc["range"].clone()),
    };
    // The file relative to the project, when it is inside it (not a library's).
    let path = uri
        .as_str()
        .and_then(crate::lsp::protocol::path_of)
        .filter(|p| root.contains(p))
        .map(|p| root.relative(&p));
    Ok(HttpResponse::Ok().json(json!({"uri": uri, "range": range, "path": path})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsBody {
    /// The file, relative to the project's folder (1 to 4096 bytes).
    file_path: String,
    /// The editor's unsaved content (at most 10 MiB); default the file on disk.
    content: Option<String>,
}

/// The file's diagnostics: `{count, diagnostics}` (LSP `Diagnostic`s).
#[utoipa::path(
    post,
    path = "/lsp/{project_id}/diagnostics",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    request_body = DiagnosticsBody,
    responses(
        (status = 200, description = "The diagnostics", body = Object),
        (status = 400, description = "Unsupported language, or the file cannot be used", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
        (status = 404, description = "No such project or file", body = Detail),
        (status = 503, description = "Too many language servers are busy", body = Detail),
    ),
)]
pub async fn diagnostics(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
    body: web::Json<DiagnosticsBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    check(&b.file_path, b.content.as_ref())?;
    let lang = language(q.language.as_deref())?;
    let (server, root) = server_for(&state, &user, *id, lang).await?;
    let (abs, text) = document(&root, &b.file_path, b.content).await?;
    let (uri, version) = server.sync(&abs, text).await.map_err(ApiError::Failed)?;
    let items = server
        .diagnostics(&uri, version)
        .await
        .map_err(ApiError::Failed)?;
    server.touch();
    let count = items.as_array().map_or(0, Vec::len);
    Ok(HttpResponse::Ok().json(json!({"count": count, "diagnostics": items})))
}

#[derive(Serialize, ToSchema)]
struct Shutdown {
    /// `shutdown`.
    status: &'static str,
    project_id: i64,
    language: &'static str,
}

/// Stops this edge's language server for the project and language.
#[utoipa::path(
    delete,
    path = "/lsp/{project_id}/shutdown",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    responses(
        (status = 200, description = "Stopped (or was not running)", body = Shutdown),
        (status = 400, description = "Unsupported language", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
    ),
)]
pub async fn shutdown(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
) -> Result<HttpResponse, ApiError> {
    require(&state, &user, &[Permission::Read])?;
    let lang = language(q.language.as_deref())?;
    state.workspace.lsp.stop(*id, lang).await;
    Ok(HttpResponse::Ok().json(Shutdown {
        status: "shutdown",
        project_id: *id,
        language: lang.name(),
    }))
}

#[derive(Serialize, ToSchema)]
struct ServerStatus {
    active: bool,
    project_id: i64,
    language: &'static str,
    /// The server's process id when it runs.
    pid: Option<i32>,
}

/// Whether this edge runs a language server for the project and language.
#[utoipa::path(
    get,
    path = "/lsp/{project_id}/status",
    params(
        ("project_id" = i64, Path, description = "Project id"),
        LangQuery,
    ),
    responses(
        (status = 200, description = "The server's state", body = ServerStatus),
        (status = 400, description = "Unsupported language", body = Detail),
        (status = 403, description = "Missing permission", body = Detail),
    ),
)]
pub async fn status(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<LangQuery>,
) -> Result<HttpResponse, ApiError> {
    require(&state, &user, &[Permission::Read])?;
    let lang = language(q.language.as_deref())?;
    let running = state.workspace.lsp.running(*id, lang).await;
    Ok(HttpResponse::Ok().json(ServerStatus {
        active: running.is_some(),
        project_id: *id,
        language: lang.name(),
        pid: running.map(|s| s.pid),
    }))
}
