//! Projects (contract §2.13): a project is a folder on disk plus what GatheRing knows about it
//! (stack, commands, conventions, notes), persisted in `project.projects`.
//!
//! - [`store`]: the table, one static statement per operation.
//! - [`detect`]: stack auto-detection from the files in the folder.
//! - [`browse`]: the folder browser of `GET /projects/browse/folders`, with its refusals.
//! - [`roots`]: the folders projects may live in (`GATHERING_PROJECT_ROOTS`).
//! - [`resolve_root`]: a project's root directory (`repository_path`, else `local_path`),
//!   the only place its file, git, shell and code tools may touch; refused when outside the
//!   project roots.

pub mod browse;
pub mod detect;
pub mod roots;
pub mod store;

pub use roots::ProjectRoots;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::root::ProjectRoot;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("Project {0} not found")]
    NotFound(i64),
    /// Bad input: a path that is missing or not a directory, a bad field (400).
    #[error("{0}")]
    Invalid(String),
    /// A path the server will not open (403).
    #[error("{0}")]
    Forbidden(String),
    /// The path is already a project (409).
    #[error("{0}")]
    Conflict(String),
    /// A linked thing (circle) does not exist (404).
    #[error("{0}")]
    Missing(String),
    #[error("database error: {0}")]
    Db(String),
}

impl From<gathering_db::tokio_postgres::Error> for ProjectError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        ProjectError::Db(e.to_string())
    }
}

impl From<gathering_db::PoolError> for ProjectError {
    fn from(e: gathering_db::PoolError) -> Self {
        ProjectError::Db(e.to_string())
    }
}

impl From<serde_json::Error> for ProjectError {
    fn from(e: serde_json::Error) -> Self {
        ProjectError::Db(format!("unexpected project row: {e}"))
    }
}

/// A `project.projects` row plus its circle count.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub repository_url: Option<String>,
    pub local_path: Option<String>,
    pub repository_path: Option<String>,
    pub branch: String,
    pub tech_stack: Vec<String>,
    pub languages: Vec<String>,
    pub frameworks: Vec<String>,
    pub status: String,
    pub conventions: Value,
    pub key_files: Value,
    pub commands: Value,
    pub tools: Value,
    pub quality_standards: Value,
    pub notes: Vec<String>,
    pub venv_path: Option<String>,
    pub python_version: Option<String>,
    #[serde(default)]
    pub circle_count: i64,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Project {
    /// The root directory: `repository_path` (what the workspace reads), else `local_path`
    /// (what the projects API writes).
    pub fn root_path(&self) -> Option<&str> {
        self.repository_path
            .as_deref()
            .or(self.local_path.as_deref())
    }

    /// The contract's `Project` object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "path": self.local_path.as_deref().or(self.repository_path.as_deref()),
            "repository_path": self.repository_path,
            "description": self.description,
            "repository_url": self.repository_url,
            "branch": self.branch,
            "status": self.status,
            "tech_stack": self.tech_stack,
            "languages": self.languages,
            "frameworks": self.frameworks,
            "venv_path": self.venv_path,
            "python_version": self.python_version,
            "tools": self.tools,
            "conventions": self.conventions,
            "key_files": self.key_files,
            "commands": self.commands,
            "notes": self.notes,
            "quality_standards": self.quality_standards,
            "circle_count": self.circle_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// The project as agent prompt context (`GET /projects/{id}/context`).
    pub fn prompt_context(&self) -> String {
        let mut s = format!(
            "## Projet: {}\n",
            self.display_name.as_deref().unwrap_or(&self.name)
        );
        if let Some(d) = self.description.as_deref().filter(|d| !d.is_empty()) {
            s.push_str(&format!("{d}\n"));
        }
        if let Some(p) = self.root_path() {
            s.push_str(&format!("- Chemin: {p}\n"));
        }
        s.push_str(&format!("- Branche: {}\n", self.branch));
        let list = |label: &str, items: &[String], s: &mut String| {
            if !items.is_empty() {
                s.push_str(&format!("- {label}: {}\n", items.join(", ")));
            }
        };
        list("Langages", &self.languages, &mut s);
        list("Frameworks", &self.frameworks, &mut s);
        if let Some(v) = &self.venv_path {
            s.push_str(&format!(
                "- Venv: {v}{}\n",
                self.python_version
                    .as_deref()
                    .map(|p| format!(" (Python {p})"))
                    .unwrap_or_default()
            ));
        }
        let map = |label: &str, v: &Value, s: &mut String| {
            if let Some(o) = v.as_object().filter(|o| !o.is_empty()) {
                s.push_str(&format!("\n### {label}\n"));
                for (k, v) in o {
                    let v = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    s.push_str(&format!("- {k}: {v}\n"));
                }
            }
        };
        map("Outils", &self.tools, &mut s);
        map("Conventions", &self.conventions, &mut s);
        map("Commandes", &self.commands, &mut s);
        map("Fichiers clés", &self.key_files, &mut s);
        if !self.notes.is_empty() {
            s.push_str("\n### Notes\n");
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

/// The root directory of project `id`, canonicalised (the folder must still exist and lie
/// inside one of `roots`).
pub async fn resolve_root(
    client: &gathering_db::Client,
    id: i64,
    roots: &ProjectRoots,
) -> Result<ProjectRoot, ProjectError> {
    let project = store::get(client, id)
        .await?
        .ok_or(ProjectError::NotFound(id))?;
    let path = project
        .root_path()
        .ok_or_else(|| ProjectError::Invalid(format!("Project {id} has no path")))?
        .to_owned();
    let roots = roots.clone();
    let root = tokio::task::spawn_blocking(move || {
        let root = ProjectRoot::new(&path)
            .map_err(|e| ProjectError::Invalid(format!("Project {id}: {e}")))?;
        roots.check(root.path())?;
        Ok::<_, ProjectError>(root)
    })
    .await
    .map_err(|e| ProjectError::Invalid(e.to_string()))??;
    Ok(root.with_id(id))
}
