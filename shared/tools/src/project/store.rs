//! `project.projects` and `project.circle_projects`. Every statement returns the row as JSON
//! (`to_jsonb`) with its circle count, decoded into [`Project`] in one place.

use gathering_db::Client;
use gathering_db::tokio_postgres::Row;
use gathering_db::tokio_postgres::error::SqlState;
use serde_json::{Value, json};

use super::detect::Detection;
use super::{Project, ProjectError};

fn decode(row: &Row) -> Result<Project, ProjectError> {
    let v: Value = row.try_get(0)?;
    Ok(serde_json::from_value(v)?)
}

fn decode_opt(row: Option<Row>) -> Result<Option<Project>, ProjectError> {
    row.as_ref().map(decode).transpose()
}

/// Projects, most recently updated first.
pub async fn list(client: &Client, status: Option<&str>) -> Result<Vec<Project>, ProjectError> {
    let rows = client
        .query(
            "SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) \
             FROM project.projects p WHERE ($1::text IS NULL OR p.status = $1) \
             ORDER BY p.updated_at DESC, p.id DESC LIMIT 1000",
            &[&status],
        )
        .await?;
    rows.iter().map(decode).collect()
}

pub async fn get(client: &Client, id: i64) -> Result<Option<Project>, ProjectError> {
    let stmt = client
        .prepare_cached(
            "SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) \
             FROM project.projects p WHERE p.id = $1",
        )
        .await?;
    decode_opt(client.query_opt(&stmt, &[&id]).await?)
}

/// What `POST /projects` stores.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The name the user gave; stored as `display_name` when detection names the project.
    pub name: String,
    /// Canonical path of an existing directory.
    pub path: String,
    pub description: Option<String>,
    pub detection: Option<Detection>,
}

pub async fn create(client: &Client, new: &NewProject) -> Result<Project, ProjectError> {
    let d = new.detection.clone().unwrap_or_default();
    let (name, display_name) = match &new.detection {
        Some(d) if !d.name.is_empty() => (d.name.clone(), Some(new.name.clone())),
        _ => (new.name.clone(), None),
    };
    let branch = d.branch.clone().unwrap_or_else(|| "main".into());
    let result = client
        .query_one(
            "WITH p AS ( \
               INSERT INTO project.projects (name, display_name, description, local_path, repository_url, \
                   branch, tech_stack, languages, frameworks, venv_path, python_version, tools, \
                   conventions, key_files, commands, notes) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
               RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', 0) FROM p",
            &[
                &name,
                &display_name,
                &new.description,
                &new.path,
                &d.repository_url,
                &branch,
                &d.tech_stack,
                &d.languages,
                &d.frameworks,
                &d.venv_path,
                &d.python_version,
                &d.tools,
                &d.conventions,
                &d.key_files,
                &d.commands,
                &d.notes,
            ],
        )
        .await;
    match result {
        Ok(row) => decode(&row),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(ProjectError::Conflict(
            format!("A project already exists at {}", new.path),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `PATCH /projects/{id}`: absent fields are left unchanged.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub venv_path: Option<String>,
    pub python_version: Option<String>,
    pub tools: Option<Value>,
    pub conventions: Option<Value>,
    pub key_files: Option<Value>,
    pub commands: Option<Value>,
    pub notes: Option<Vec<String>>,
}

pub async fn update(
    client: &Client,
    id: i64,
    p: &ProjectPatch,
) -> Result<Option<Project>, ProjectError> {
    let row = client
        .query_opt(
            "WITH p AS ( \
               UPDATE project.projects SET \
                 name = COALESCE($2, name), display_name = COALESCE($3, display_name), \
                 description = COALESCE($4, description), status = COALESCE($5, status), \
                 venv_path = COALESCE($6, venv_path), python_version = COALESCE($7, python_version), \
                 tools = COALESCE($8, tools), conventions = COALESCE($9, conventions), \
                 key_files = COALESCE($10, key_files), commands = COALESCE($11, commands), \
                 notes = COALESCE($12, notes) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p",
            &[
                &id,
                &p.name,
                &p.display_name,
                &p.description,
                &p.status,
                &p.venv_path,
                &p.python_version,
                &p.tools,
                &p.conventions,
                &p.key_files,
                &p.commands,
                &p.notes,
            ],
        )
        .await?;
    decode_opt(row)
}

/// Re-applies a detection (`POST /projects/{id}/refresh`): detected facts replace the old ones,
/// maps are merged (detected keys win), notes are added when new.
pub async fn apply_detection(
    client: &Client,
    id: i64,
    d: &Detection,
) -> Result<Option<Project>, ProjectError> {
    let row = client
        .query_opt(
            "WITH p AS ( \
               UPDATE project.projects SET \
                 branch = COALESCE($2, branch), tech_stack = $3, languages = $4, frameworks = $5, \
                 venv_path = COALESCE($6, venv_path), python_version = COALESCE($7, python_version), \
                 tools = tools || $8, conventions = conventions || $9, key_files = key_files || $10, \
                 commands = commands || $11, \
                 notes = notes || ARRAY(SELECT n FROM unnest($12::text[]) AS n WHERE n <> ALL(notes)), \
                 repository_url = COALESCE(repository_url, $13) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p",
            &[
                &id,
                &d.branch,
                &d.tech_stack,
                &d.languages,
                &d.frameworks,
                &d.venv_path,
                &d.python_version,
                &d.tools,
                &d.conventions,
                &d.key_files,
                &d.commands,
                &d.notes,
                &d.repository_url,
            ],
        )
        .await?;
    decode_opt(row)
}

pub async fn delete(client: &Client, id: i64) -> Result<bool, ProjectError> {
    Ok(client
        .execute("DELETE FROM project.projects WHERE id = $1", &[&id])
        .await?
        == 1)
}

/// Which JSON map of a project an entry goes into.
#[derive(Debug, Clone, Copy)]
pub enum MapField {
    Conventions,
    Commands,
    KeyFiles,
    Tools,
}

/// Sets `key` to `value` in one of the project's maps.
pub async fn set_entry(
    client: &Client,
    id: i64,
    field: MapField,
    key: &str,
    value: &Value,
) -> Result<Option<Project>, ProjectError> {
    let sql = match field {
        MapField::Conventions => {
            "WITH p AS (UPDATE project.projects SET conventions = conventions || jsonb_build_object($2::text, $3::jsonb) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p"
        }
        MapField::Commands => {
            "WITH p AS (UPDATE project.projects SET commands = commands || jsonb_build_object($2::text, $3::jsonb) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p"
        }
        MapField::KeyFiles => {
            "WITH p AS (UPDATE project.projects SET key_files = key_files || jsonb_build_object($2::text, $3::jsonb) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p"
        }
        MapField::Tools => {
            "WITH p AS (UPDATE project.projects SET tools = tools || jsonb_build_object($2::text, $3::jsonb) \
               WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p"
        }
    };
    decode_opt(client.query_opt(sql, &[&id, &key, value]).await?)
}

pub async fn add_note(
    client: &Client,
    id: i64,
    note: &str,
) -> Result<Option<Project>, ProjectError> {
    let row = client
        .query_opt(
            "WITH p AS (UPDATE project.projects SET notes = array_append(notes, $2) WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p",
            &[&id, &note],
        )
        .await?;
    decode_opt(row)
}

pub async fn remove_note(
    client: &Client,
    id: i64,
    note: &str,
) -> Result<Option<Project>, ProjectError> {
    let row = client
        .query_opt(
            "WITH p AS (UPDATE project.projects SET notes = array_remove(notes, $2) WHERE id = $1 RETURNING *) \
             SELECT to_jsonb(p) || jsonb_build_object('circle_count', \
                    (SELECT count(*) FROM project.circle_projects cp WHERE cp.project_id = p.id)) FROM p",
            &[&id, &note],
        )
        .await?;
    decode_opt(row)
}

/// Links a circle; `"linked"` or `"already_linked"`.
pub async fn link_circle(
    client: &Client,
    project_id: i64,
    circle_id: i64,
    is_primary: bool,
) -> Result<&'static str, ProjectError> {
    let row = client
        .query_one(
            "WITH pr AS (SELECT id FROM project.projects WHERE id = $1), \
                  ci AS (SELECT id FROM circle.circles WHERE id = $2 AND is_active), \
                  ins AS (INSERT INTO project.circle_projects (circle_id, project_id, is_primary) \
                          SELECT ci.id, pr.id, $3 FROM pr, ci \
                          ON CONFLICT (circle_id, project_id) DO NOTHING RETURNING id) \
             SELECT EXISTS (SELECT 1 FROM pr), EXISTS (SELECT 1 FROM ci), EXISTS (SELECT 1 FROM ins)",
            &[&project_id, &circle_id, &is_primary],
        )
        .await?;
    let (project, circle, inserted): (bool, bool, bool) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if !project {
        return Err(ProjectError::NotFound(project_id));
    }
    if !circle {
        return Err(ProjectError::Missing(format!(
            "Circle {circle_id} not found"
        )));
    }
    Ok(if inserted { "linked" } else { "already_linked" })
}

pub async fn unlink_circle(
    client: &Client,
    project_id: i64,
    circle_id: i64,
) -> Result<bool, ProjectError> {
    Ok(client
        .execute(
            "DELETE FROM project.circle_projects WHERE project_id = $1 AND circle_id = $2",
            &[&project_id, &circle_id],
        )
        .await?
        == 1)
}

/// `[{circle_id, circle_name, is_primary, linked_at}]`.
pub async fn circles(client: &Client, project_id: i64) -> Result<Vec<Value>, ProjectError> {
    let rows = client
        .query(
            "SELECT c.id, c.name, cp.is_primary, cp.linked_at FROM project.circle_projects cp \
             JOIN circle.circles c ON c.id = cp.circle_id WHERE cp.project_id = $1 \
             ORDER BY cp.is_primary DESC, cp.linked_at",
            &[&project_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let at: chrono::DateTime<chrono::Utc> = r.try_get(3)?;
            Ok(json!({
                "circle_id": r.try_get::<_, i64>(0)?,
                "circle_name": r.try_get::<_, String>(1)?,
                "is_primary": r.try_get::<_, bool>(2)?,
                "linked_at": at.to_rfc3339(),
            }))
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?)
}
