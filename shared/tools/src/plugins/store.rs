//! `agent.plugins`: the plugin registry every process shares (owned here). Each write bumps
//! `generation` when processes must act on it; a statement trigger notifies
//! `plugins_changed` in the same transaction, so every edge and executor re-reads the table.

use gathering_db::Client;
use serde_json::{Value, json};

use super::manifest::{Manifest, skill_name};
use crate::error::ToolError;

/// The notification channel of plugin changes.
pub const CHANNEL: &str = "plugins_changed";

#[derive(Debug, Clone)]
pub struct PluginRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub author: Option<String>,
    pub license: Option<String>,
    pub homepage: Option<String>,
    pub tags: Vec<String>,
    pub kind: String,
    pub source_dir: Option<String>,
    pub manifest: Value,
    pub status: String,
    pub error: Option<String>,
    pub config: Value,
    pub tools: Value,
    pub competencies: Vec<String>,
    pub generation: i64,
}

/// The columns [`decode`] reads, as a literal so each query below is one static string.
macro_rules! columns {
    () => {
        "id, name, version, description, author, license, homepage, tags, kind, source_dir, \
         manifest, status, error, config, tools, competencies, generation"
    };
}

const LIST_SQL: &str = concat!("SELECT ", columns!(), " FROM agent.plugins ORDER BY id");
const GET_SQL: &str = concat!("SELECT ", columns!(), " FROM agent.plugins WHERE id = $1");

fn decode(r: &gathering_db::tokio_postgres::Row) -> Result<PluginRow, ToolError> {
    Ok(PluginRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        description: r.try_get("description")?,
        author: r.try_get("author")?,
        license: r.try_get("license")?,
        homepage: r.try_get("homepage")?,
        tags: r.try_get("tags")?,
        kind: r.try_get("kind")?,
        source_dir: r.try_get("source_dir")?,
        manifest: r.try_get("manifest")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        config: r.try_get("config")?,
        tools: r.try_get("tools")?,
        competencies: r.try_get("competencies")?,
        generation: r.try_get("generation")?,
    })
}

impl PluginRow {
    pub fn manifest(&self) -> Result<Manifest, ToolError> {
        Manifest::parse(self.manifest.clone()).map_err(|p| {
            ToolError::Failed(format!(
                "stored manifest of plugin '{}' is invalid: {}",
                self.id,
                p.iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })
    }

    /// How many tools the plugin brings.
    pub fn tools_count(&self) -> usize {
        self.tools.as_array().map(Vec::len).unwrap_or(0)
    }

    /// `PluginInfo` of the contract.
    pub fn info(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "version": self.version,
            "description": self.description, "author": self.author, "license": self.license,
            "homepage": self.homepage, "tags": self.tags, "status": self.status,
            "error": self.error, "tools_count": self.tools_count(),
            "competencies_count": self.competencies.len(),
            "kind": self.kind, "source_dir": self.source_dir,
        })
    }
}

pub async fn list(c: &Client) -> Result<Vec<PluginRow>, ToolError> {
    c.query(LIST_SQL, &[]).await?.iter().map(decode).collect()
}

pub async fn get(c: &Client, id: &str) -> Result<Option<PluginRow>, ToolError> {
    c.query_opt(GET_SQL, &[&id])
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Records a manifest found on disk. A known plugin from the same folder gets the new manifest
/// (and a new generation when it changed); `Err` names the folder already holding the id.
pub async fn upsert_discovered(c: &Client, m: &Manifest, dir: &str) -> Result<(), ToolError> {
    let manifest = serde_json::to_value(m).map_err(|e| ToolError::Failed(e.to_string()))?;
    let row = c
        .query_opt(
            "INSERT INTO agent.plugins (id, name, version, description, author, license, homepage, tags, \
                 kind, source_dir, manifest, competencies) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version, \
                 description = EXCLUDED.description, author = EXCLUDED.author, license = EXCLUDED.license, \
                 homepage = EXCLUDED.homepage, tags = EXCLUDED.tags, kind = EXCLUDED.kind, \
                 manifest = EXCLUDED.manifest, competencies = EXCLUDED.competencies, \
                 generation = agent.plugins.generation + (agent.plugins.manifest IS DISTINCT FROM EXCLUDED.manifest)::int \
             WHERE agent.plugins.source_dir = EXCLUDED.source_dir \
             RETURNING id",
            &[
                &m.id, &m.name, &m.version, &m.description, &m.author, &m.license, &m.homepage,
                &m.tags, &m.kind().as_str(), &dir, &manifest, &m.competencies,
            ],
        )
        .await?;
    if row.is_some() {
        return Ok(());
    }
    let other: Option<Option<String>> = c
        .query_opt(
            "SELECT source_dir FROM agent.plugins WHERE id = $1",
            &[&m.id],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Err(ToolError::InvalidInput(format!(
        "plugin id '{}' is already used by {}",
        m.id,
        match other.flatten() {
            Some(d) => format!("the plugin in {d}"),
            None => "a dynamic plugin".into(),
        }
    )))
}

const SAVE_DECLARATIVE_SQL: &str = concat!(
    "INSERT INTO agent.plugins (id, name, version, description, author, license, homepage, tags, \
             kind, source_dir, manifest, competencies, status, config, tools) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'declarative', NULL, $9, $10, 'loaded', $11, $12) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version, \
             description = EXCLUDED.description, author = EXCLUDED.author, license = EXCLUDED.license, \
             homepage = EXCLUDED.homepage, tags = EXCLUDED.tags, manifest = EXCLUDED.manifest, \
             competencies = EXCLUDED.competencies, config = EXCLUDED.config, tools = EXCLUDED.tools, \
             status = CASE WHEN agent.plugins.status = 'enabled' THEN 'enabled' ELSE 'loaded' END, \
             error = NULL, generation = agent.plugins.generation + 1 \
         WHERE agent.plugins.source_dir IS NULL ",
    "RETURNING ",
    columns!()
);

/// Creates or replaces a dynamic (declarative) plugin, loaded. A plugin of the same id from
/// disk is not replaced.
pub async fn upsert_dynamic(
    c: &Client,
    m: &Manifest,
    config: &Value,
) -> Result<PluginRow, ToolError> {
    let manifest = serde_json::to_value(m).map_err(|e| ToolError::Failed(e.to_string()))?;
    let tools = declared_tools(m);
    let row = c
        .query_opt(
            SAVE_DECLARATIVE_SQL,
            &[
                &m.id,
                &m.name,
                &m.version,
                &m.description,
                &m.author,
                &m.license,
                &m.homepage,
                &m.tags,
                &manifest,
                &m.competencies,
                config,
                &tools,
            ],
        )
        .await?;
    match row {
        Some(r) => decode(&r),
        None => Err(ToolError::InvalidInput(format!(
            "plugin id '{}' belongs to a plugin discovered on disk",
            m.id
        ))),
    }
}

/// The declared tools of a manifest, in the stored `tools` shape.
pub fn declared_tools(m: &Manifest) -> Value {
    Value::Array(
        m.tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name, "description": t.description, "input_schema": t.parameters,
                    "category": t.category, "required_competencies": t.required_competencies,
                    "dangerous": t.dangerous,
                })
            })
            .collect(),
    )
}

/// The plugin is loaded with these tools (an enabled plugin stays enabled).
pub async fn set_loaded(
    c: &Client,
    id: &str,
    tools: &Value,
    config: &Value,
) -> Result<(), ToolError> {
    c.execute(
        "UPDATE agent.plugins SET tools = $2, config = $3, error = NULL, generation = generation + 1, \
             status = CASE WHEN status = 'enabled' THEN 'enabled' ELSE 'loaded' END \
         WHERE id = $1",
        &[&id, tools, config],
    )
    .await?;
    Ok(())
}

pub async fn set_error(c: &Client, id: &str, error: &str) -> Result<(), ToolError> {
    c.execute(
        "UPDATE agent.plugins SET status = 'error', error = $2, generation = generation + 1 WHERE id = $1",
        &[&id, &error],
    )
    .await?;
    Ok(())
}

/// Moves the plugin to `status` and switches its catalogue skill with it, in one transaction.
pub async fn set_status(c: &mut Client, row: &PluginRow, status: &str) -> Result<(), ToolError> {
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE agent.plugins SET status = $2, error = NULL, generation = generation + 1 WHERE id = $1",
        &[&row.id, &status],
    )
    .await?;
    let enabled = status == "enabled";
    let perms: Vec<String> = match row.manifest() {
        Ok(m) if m.kind() != super::manifest::Kind::Declarative => m
            .mcp_grants()
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        Ok(m) => {
            let mut g = crate::permission::Grants::NONE;
            for t in &m.tools {
                g = g.union(super::bridge::declared_grants(t));
            }
            g.names().into_iter().map(str::to_owned).collect()
        }
        Err(_) => Vec::new(),
    };
    let dangerous = row
        .tools
        .as_array()
        .is_some_and(|ts| ts.iter().any(|t| t["dangerous"] == json!(true)));
    let description = format!("Plugin {}: {}", row.name, row.description);
    let description: String = description.chars().take(1000).collect();
    tx.execute(
        "INSERT INTO agent.skills (name, display_name, description, category, required_permissions, \
             version, is_dangerous, is_enabled) \
         VALUES ($1, $2, $3, 'plugins', $4, $5, $6, $7) \
         ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name, \
             description = EXCLUDED.description, required_permissions = EXCLUDED.required_permissions, \
             version = EXCLUDED.version, is_dangerous = EXCLUDED.is_dangerous, is_enabled = EXCLUDED.is_enabled",
        &[
            &skill_name(&row.id),
            &row.name.chars().take(100).collect::<String>(),
            &description,
            &perms,
            &row.version.chars().take(50).collect::<String>(),
            &dangerous,
            &enabled,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
