//! `/personas`: persona templates (prompt, traits, style), each with its default model's
//! alias. Builtin personas can be changed but not deleted.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::input::{Refusal, line_ok, list_ok, opt_line_ok, opt_list_ok, opt_text_ok, refusal};
use super::rows;
use crate::auth::AuthUser;
use crate::error::{ApiError, Violations};
use crate::openapi::Detail;
use crate::state::AppState;

/// The columns of a persona row, over `p` (personas) and `m` (its default model).
macro_rules! columns {
    () => {
        "SELECT p.id, p.display_name, p.role, p.base_prompt, p.full_prompt, p.traits,
                p.communication_style, p.specializations, p.languages, p.work_ethic, p.motto,
                p.collaboration_notes, p.description, p.icon, p.is_builtin, p.default_model_id,
                p.owner_agent_id, p.created_at, p.updated_at, m.model_alias AS default_model_alias "
    };
}

const LIST_SQL: &str = concat!(
    columns!(),
    "FROM agent.personas p LEFT JOIN agent.models m ON m.id = p.default_model_id ORDER BY p.id"
);

const GET_SQL: &str = concat!(
    columns!(),
    "FROM agent.personas p LEFT JOIN agent.models m ON m.id = p.default_model_id WHERE p.id = $1"
);

const CREATE_SQL: &str = concat!(
    "WITH p AS (
        INSERT INTO agent.personas (display_name, role, base_prompt, full_prompt, traits,
            communication_style, specializations, languages, motto, description, default_model_id)
        VALUES ($1, $2, COALESCE($3, ''), $4, $5, $6, $7, $8, $9, $10, $11)
        RETURNING *) ",
    columns!(),
    "FROM p LEFT JOIN agent.models m ON m.id = p.default_model_id"
);

const UPDATE_SQL: &str = concat!(
    "WITH p AS (
        UPDATE agent.personas SET display_name = COALESCE($2, display_name),
            role = COALESCE($3, role), base_prompt = COALESCE($4, base_prompt),
            full_prompt = COALESCE($5, full_prompt), traits = COALESCE($6, traits),
            communication_style = COALESCE($7, communication_style),
            specializations = COALESCE($8, specializations), languages = COALESCE($9, languages),
            motto = COALESCE($10, motto), description = COALESCE($11, description),
            default_model_id = COALESCE($12, default_model_id),
            work_ethic = COALESCE($13, work_ethic),
            collaboration_notes = COALESCE($14, collaboration_notes), icon = COALESCE($15, icon)
        WHERE id = $1
        RETURNING *) ",
    columns!(),
    "FROM p LEFT JOIN agent.models m ON m.id = p.default_model_id"
);

/// One statement: deletes the persona unless it is builtin, and says what it found (`NULL`: no
/// such persona).
const DELETE_SQL: &str = "
WITH target AS (SELECT id, is_builtin FROM agent.personas WHERE id = $1),
     gone AS (DELETE FROM agent.personas p USING target t WHERE p.id = t.id AND NOT t.is_builtin)
SELECT is_builtin FROM target";

#[utoipa::path(
    get,
    path = "/personas",
    responses(
        (status = 200, description = "`{personas[row + default_model_alias], total}`. Row: `id, display_name, role, base_prompt?, full_prompt?, traits[], communication_style, specializations[], languages[], work_ethic[], motto?, collaboration_notes?, description?, icon?, is_builtin, default_model_id?, created_at, updated_at`", body = Object),
    ),
)]
pub async fn list(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let personas = rows::all_to_json(&client.query(&stmt, &[]).await?)?;
    Ok(HttpResponse::Ok().json(json!({"total": personas.len(), "personas": personas})))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Persona not found".into())
}

#[utoipa::path(
    get,
    path = "/personas/{persona_id}",
    params(("persona_id" = i64, Path, description = "Persona id")),
    responses(
        (status = 200, description = "row", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(GET_SQL).await?;
    let row = client
        .query_opt(&stmt, &[&id.into_inner()])
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}

fn balanced() -> String {
    "balanced".into()
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    display_name: String,
    role: String,
    base_prompt: Option<String>,
    full_prompt: Option<String>,
    #[serde(default)]
    traits: Vec<String>,
    #[serde(default = "balanced")]
    communication_style: String,
    #[serde(default)]
    specializations: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    motto: Option<String>,
    description: Option<String>,
    default_model_id: Option<i64>,
}

/// Limits on persona fields.
const NAME_MAX: usize = 200;
const PROMPT_MAX: usize = 200_000;
const NOTE_MAX: usize = 10_000;
const ITEMS: usize = 50;
const ITEM_LEN: usize = 200;

fn refused(e: gathering_db::tokio_postgres::Error) -> ApiError {
    match refusal(&e) {
        Some(Refusal::Duplicate(_)) => {
            ApiError::BadRequest("A persona with this display_name already exists".into())
        }
        Some(Refusal::Missing(_)) => ApiError::BadRequest("Model not found".into()),
        None => e.into(),
    }
}

#[utoipa::path(
    post,
    path = "/personas",
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 row", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    _user: AuthUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    Violations::new()
        .check(
            line_ok(&b.display_name, 1, NAME_MAX),
            "display_name",
            "display_name must be 1 to 200 characters",
        )
        .check(
            line_ok(&b.role, 1, NAME_MAX),
            "role",
            "role must be 1 to 200 characters",
        )
        .check(
            opt_text_ok(&b.base_prompt, PROMPT_MAX),
            "base_prompt",
            "base_prompt is too long",
        )
        .check(
            opt_text_ok(&b.full_prompt, PROMPT_MAX),
            "full_prompt",
            "full_prompt is too long",
        )
        .check(
            list_ok(&b.traits, ITEMS, ITEM_LEN),
            "traits",
            "at most 50 traits of 1 to 200 characters",
        )
        .check(
            line_ok(&b.communication_style, 1, 50),
            "communication_style",
            "communication_style must be 1 to 50 characters",
        )
        .check(
            list_ok(&b.specializations, ITEMS, ITEM_LEN),
            "specializations",
            "at most 50 specializations of 1 to 200 characters",
        )
        .check(
            list_ok(&b.languages, ITEMS, 20),
            "languages",
            "at most 50 languages of 1 to 20 characters",
        )
        .check(
            opt_text_ok(&b.motto, NOTE_MAX),
            "motto",
            "motto is too long",
        )
        .check(
            opt_text_ok(&b.description, NOTE_MAX),
            "description",
            "description is too long",
        )
        .finish()?;
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            CREATE_SQL,
            &[
                &b.display_name.trim(),
                &b.role,
                &b.base_prompt,
                &b.full_prompt,
                &b.traits,
                &b.communication_style,
                &b.specializations,
                &b.languages,
                &b.motto,
                &b.description,
                &b.default_model_id,
            ],
        )
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Created().json(rows::to_json(&row)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateBody {
    display_name: Option<String>,
    role: Option<String>,
    base_prompt: Option<String>,
    full_prompt: Option<String>,
    traits: Option<Vec<String>>,
    communication_style: Option<String>,
    specializations: Option<Vec<String>>,
    languages: Option<Vec<String>>,
    motto: Option<String>,
    description: Option<String>,
    default_model_id: Option<i64>,
    work_ethic: Option<Vec<String>>,
    collaboration_notes: Option<String>,
    icon: Option<String>,
}

fn nonblank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| !s.trim().is_empty())
}

/// Changes the given fields; `null` ones are left as they are (contract §2.4).
#[utoipa::path(
    patch,
    path = "/personas/{persona_id}",
    params(("persona_id" = i64, Path, description = "Persona id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "row", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn update(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    Violations::new()
        .check(
            opt_line_ok(&b.display_name, NAME_MAX) && nonblank(&b.display_name),
            "display_name",
            "display_name must be 1 to 200 characters",
        )
        .check(
            opt_line_ok(&b.role, NAME_MAX) && nonblank(&b.role),
            "role",
            "role must be 1 to 200 characters",
        )
        .check(
            opt_text_ok(&b.base_prompt, PROMPT_MAX),
            "base_prompt",
            "base_prompt is too long",
        )
        .check(
            opt_text_ok(&b.full_prompt, PROMPT_MAX),
            "full_prompt",
            "full_prompt is too long",
        )
        .check(
            opt_list_ok(&b.traits, ITEMS, ITEM_LEN),
            "traits",
            "at most 50 traits of 1 to 200 characters",
        )
        .check(
            opt_line_ok(&b.communication_style, 50) && nonblank(&b.communication_style),
            "communication_style",
            "communication_style must be 1 to 50 characters",
        )
        .check(
            opt_list_ok(&b.specializations, ITEMS, ITEM_LEN),
            "specializations",
            "at most 50 specializations of 1 to 200 characters",
        )
        .check(
            opt_list_ok(&b.languages, ITEMS, 20),
            "languages",
            "at most 50 languages of 1 to 20 characters",
        )
        .check(
            opt_text_ok(&b.motto, NOTE_MAX),
            "motto",
            "motto is too long",
        )
        .check(
            opt_text_ok(&b.description, NOTE_MAX),
            "description",
            "description is too long",
        )
        .check(
            opt_list_ok(&b.work_ethic, ITEMS, 1000),
            "work_ethic",
            "at most 50 work_ethic entries of 1 to 1000 characters",
        )
        .check(
            opt_text_ok(&b.collaboration_notes, NOTE_MAX),
            "collaboration_notes",
            "collaboration_notes is too long",
        )
        .check(opt_line_ok(&b.icon, 100), "icon", "icon is too long")
        .finish()?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            UPDATE_SQL,
            &[
                &id.into_inner(),
                &b.display_name.as_deref().map(str::trim),
                &b.role,
                &b.base_prompt,
                &b.full_prompt,
                &b.traits,
                &b.communication_style,
                &b.specializations,
                &b.languages,
                &b.motto,
                &b.description,
                &b.default_model_id,
                &b.work_ethic,
                &b.collaboration_notes,
                &b.icon,
            ],
        )
        .await
        .map_err(refused)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(rows::to_json(&row)?))
}

/// 204, also when there was no such persona; 400 for a builtin one.
#[utoipa::path(
    delete,
    path = "/personas/{persona_id}",
    params(("persona_id" = i64, Path, description = "Persona id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let builtin: Option<bool> = client
        .query_opt(DELETE_SQL, &[&id.into_inner()])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    if builtin == Some(true) {
        return Err(ApiError::BadRequest("Cannot delete builtin persona".into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
