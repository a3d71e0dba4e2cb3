//! Per-agent skill enablement (`agent.skills` × `agent.agent_tools`, contract §2.15).
//!
//! A skill is usable by an agent when it is globally enabled (`agent.skills.is_enabled`) and
//! the agent has a row in `agent.agent_tools` with `is_enabled`. No row means not enabled:
//! tools that run code or touch files are opt-in per agent. Calls made by a user directly
//! (no agent) are not subject to enablement, only to permissions.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gathering_db::tokio_postgres::Error as PgError;
use gathering_db::{Client, Pool};
use serde_json::{Value, json};

use crate::error::ToolError;

/// The registry's view of enablement: asked before a call on behalf of an agent, told after.
pub trait EnablementCheck: Send + Sync {
    fn is_enabled<'a>(
        &'a self,
        agent_id: i64,
        skill: &'a str,
    ) -> BoxFuture<'a, Result<bool, ToolError>>;
    fn record_use<'a>(
        &'a self,
        agent_id: i64,
        skill: &'a str,
    ) -> BoxFuture<'a, Result<(), ToolError>>;
}

/// Enablement read from and usage written to PostgreSQL.
pub struct DbEnablement {
    pool: Pool,
}

impl DbEnablement {
    pub fn new(pool: Pool) -> Arc<Self> {
        Arc::new(Self { pool })
    }
}

impl EnablementCheck for DbEnablement {
    fn is_enabled<'a>(
        &'a self,
        agent_id: i64,
        skill: &'a str,
    ) -> BoxFuture<'a, Result<bool, ToolError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT at.is_enabled AND s.is_enabled FROM agent.agent_tools at \
                     JOIN agent.skills s ON s.id = at.skill_id \
                     WHERE at.agent_id = $1 AND s.name = $2",
                )
                .await?;
            let row = client.query_opt(&stmt, &[&agent_id, &skill]).await?;
            match row {
                Some(r) => Ok(r.try_get::<_, bool>(0)?),
                None => Ok(false),
            }
        })
    }

    fn record_use<'a>(
        &'a self,
        agent_id: i64,
        skill: &'a str,
    ) -> BoxFuture<'a, Result<(), ToolError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE agent.agent_tools at SET usage_count = at.usage_count + 1, last_used_at = now() \
                     FROM agent.skills s WHERE s.id = at.skill_id AND at.agent_id = $1 AND s.name = $2",
                )
                .await?;
            client.execute(&stmt, &[&agent_id, &skill]).await?;
            Ok(())
        })
    }
}

/// Globally enabled skills, optionally of one category (`GET /tools/skills`).
pub async fn list_skills(client: &Client, category: Option<&str>) -> Result<Vec<Value>, ToolError> {
    let rows = client
        .query(
            "SELECT id, name, display_name, description, category, required_permissions, \
                    is_dangerous, is_enabled, version \
             FROM agent.skills WHERE is_enabled AND ($1::text IS NULL OR category = $1) \
             ORDER BY category, name",
            &[&category],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(json!({
                "id": r.try_get::<_, i64>("id")?,
                "name": r.try_get::<_, String>("name")?,
                "display_name": r.try_get::<_, Option<String>>("display_name")?,
                "description": r.try_get::<_, Option<String>>("description")?,
                "category": r.try_get::<_, String>("category")?,
                "required_permissions": r.try_get::<_, Vec<String>>("required_permissions")?,
                "is_dangerous": r.try_get::<_, bool>("is_dangerous")?,
                "is_enabled": r.try_get::<_, bool>("is_enabled")?,
                "version": r.try_get::<_, String>("version")?,
            }))
        })
        .collect::<Result<_, PgError>>()?)
}

/// `{category: count}` of globally enabled skills.
pub async fn skill_categories(client: &Client) -> Result<Value, ToolError> {
    let rows = client
        .query(
            "SELECT category, count(*) AS n FROM agent.skills WHERE is_enabled \
             GROUP BY category ORDER BY category",
            &[],
        )
        .await?;
    let mut out = serde_json::Map::new();
    for r in rows {
        out.insert(r.try_get("category")?, json!(r.try_get::<_, i64>("n")?));
    }
    Ok(Value::Object(out))
}

/// The agent's name, `None` when there is no such agent.
pub async fn agent_name(client: &Client, agent_id: i64) -> Result<Option<String>, ToolError> {
    let stmt = client
        .prepare_cached("SELECT name FROM agent.agents WHERE id = $1")
        .await?;
    Ok(client
        .query_opt(&stmt, &[&agent_id])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Every globally enabled skill with the agent's enablement and usage (`GET /tools/agents/{id}`).
pub async fn agent_tools(client: &Client, agent_id: i64) -> Result<Vec<Value>, ToolError> {
    let rows = client
        .query(
            "SELECT s.id, s.name, s.display_name, s.category, s.required_permissions, s.is_dangerous, \
                    COALESCE(at.is_enabled, false) AS is_enabled, COALESCE(at.usage_count, 0) AS usage_count, \
                    at.last_used_at \
             FROM agent.skills s \
             LEFT JOIN agent.agent_tools at ON at.skill_id = s.id AND at.agent_id = $1 \
             WHERE s.is_enabled ORDER BY s.category, s.name",
            &[&agent_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let last: Option<chrono::DateTime<chrono::Utc>> = r.try_get("last_used_at")?;
            Ok(json!({
                "skill_id": r.try_get::<_, i64>("id")?,
                "skill_name": r.try_get::<_, String>("name")?,
                "skill_display_name": r.try_get::<_, Option<String>>("display_name")?,
                "skill_category": r.try_get::<_, String>("category")?,
                "required_permissions": r.try_get::<_, Vec<String>>("required_permissions")?,
                "is_dangerous": r.try_get::<_, bool>("is_dangerous")?,
                "is_enabled": r.try_get::<_, bool>("is_enabled")?,
                "usage_count": r.try_get::<_, i32>("usage_count")?,
                "last_used_at": last.map(|t| t.to_rfc3339()),
            }))
        })
        .collect::<Result<_, PgError>>()?)
}

/// Enables or disables one skill for an agent; false when the skill does not exist.
pub async fn set_skill(
    client: &Client,
    agent_id: i64,
    skill: &str,
    enabled: bool,
) -> Result<bool, ToolError> {
    let row = client
        .query_opt(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) \
             SELECT $1, s.id, $3 FROM agent.skills s WHERE s.name = $2 \
             ON CONFLICT (agent_id, skill_id) DO UPDATE SET is_enabled = EXCLUDED.is_enabled \
             RETURNING id",
            &[&agent_id, &skill, &enabled],
        )
        .await?;
    sync_skill_names(client, agent_id).await?;
    Ok(row.is_some())
}

/// Enables or disables the named skills; returns how many rows changed (unknown names are
/// skipped).
pub async fn set_skills(
    client: &Client,
    agent_id: i64,
    skills: &[String],
    enabled: bool,
) -> Result<u64, ToolError> {
    let n = client
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) \
             SELECT $1, s.id, $3 FROM agent.skills s WHERE s.name = ANY($2) \
             ON CONFLICT (agent_id, skill_id) DO UPDATE SET is_enabled = EXCLUDED.is_enabled",
            &[&agent_id, &skills, &enabled],
        )
        .await?;
    sync_skill_names(client, agent_id).await?;
    Ok(n)
}

/// Enables every globally enabled skill (of a category) for the agent.
pub async fn enable_all(
    client: &Client,
    agent_id: i64,
    category: Option<&str>,
) -> Result<u64, ToolError> {
    let n = client
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) \
             SELECT $1, s.id, true FROM agent.skills s \
             WHERE s.is_enabled AND ($2::text IS NULL OR s.category = $2) \
             ON CONFLICT (agent_id, skill_id) DO UPDATE SET is_enabled = true",
            &[&agent_id, &category],
        )
        .await?;
    sync_skill_names(client, agent_id).await?;
    Ok(n)
}

/// Disables every skill (of a category) for the agent.
pub async fn disable_all(
    client: &Client,
    agent_id: i64,
    category: Option<&str>,
) -> Result<u64, ToolError> {
    let n = client
        .execute(
            "UPDATE agent.agent_tools at SET is_enabled = false FROM agent.skills s \
             WHERE s.id = at.skill_id AND at.agent_id = $1 AND at.is_enabled \
               AND ($2::text IS NULL OR s.category = $2)",
            &[&agent_id, &category],
        )
        .await?;
    sync_skill_names(client, agent_id).await?;
    Ok(n)
}

/// Keeps `agent.agents.skill_names` (the agent's configured skills, `/agents/{id}/skills`)
/// equal to its enabled skills after a change through `/tools`.
async fn sync_skill_names(client: &Client, agent_id: i64) -> Result<(), ToolError> {
    client
        .execute(
            "UPDATE agent.agents SET skill_names = ARRAY( \
                 SELECT s.name FROM agent.agent_tools at JOIN agent.skills s ON s.id = at.skill_id \
                 WHERE at.agent_id = $1 AND at.is_enabled ORDER BY s.name) \
             WHERE id = $1",
            &[&agent_id],
        )
        .await?;
    Ok(())
}

/// Names of the skills the agent can use.
pub async fn enabled_skills(client: &Client, agent_id: i64) -> Result<Vec<String>, ToolError> {
    let stmt = client
        .prepare_cached(
            "SELECT s.name FROM agent.agent_tools at JOIN agent.skills s ON s.id = at.skill_id \
             WHERE at.agent_id = $1 AND at.is_enabled AND s.is_enabled ORDER BY s.name",
        )
        .await?;
    Ok(client
        .query(&stmt, &[&agent_id])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}
