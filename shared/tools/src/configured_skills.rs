//! An agent's configured skills (`agent.agents.skill_names`, contract §2.3 `/agents/{id}/skills`)
//! kept consistent with what it may use (`agent.agent_tools`), each change in one statement:
//! configuring a skill enables it for the agent, removing one disables it, and [`configure`]
//! makes the enabled set exactly the configured list.
//!
//! Why here: this crate owns per-agent skill configuration — `agent.agent_tools` and the
//! `skill_names` column that mirrors it ([`crate::enablement`] keeps the mirror after changes
//! through `/tools`) — so both routes (`/agents/…/skills`, `/tools/agents/…`) and the agents'
//! own tools change them through one crate.

use gathering_db::Client;

use crate::error::ToolError;

/// Configured = `$2`, enabled exactly = `$2`.
const SET_SQL: &str = "
WITH a AS (UPDATE agent.agents SET skill_names = $2 WHERE id = $1 RETURNING id),
     enable AS (INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled)
                SELECT a.id, s.id, true FROM a JOIN agent.skills s ON s.name = ANY($2)
                ON CONFLICT (agent_id, skill_id) DO UPDATE SET is_enabled = true),
     disable AS (UPDATE agent.agent_tools t SET is_enabled = false
                 FROM a, agent.skills s
                 WHERE t.agent_id = a.id AND s.id = t.skill_id AND t.is_enabled
                   AND NOT (s.name = ANY($2)))
SELECT count(*) FROM a";

/// Appends the skill unless configured, and enables it either way.
const ADD_SQL: &str = "
WITH old AS (SELECT id, $2 = ANY(skill_names) AS had, skill_names FROM agent.agents
             WHERE id = $1 FOR UPDATE),
     upd AS (UPDATE agent.agents a SET skill_names = array_append(a.skill_names, $2)
             FROM old WHERE a.id = old.id AND NOT old.had RETURNING a.skill_names),
     enable AS (INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled)
                SELECT old.id, s.id, true FROM old, agent.skills s WHERE s.name = $2
                ON CONFLICT (agent_id, skill_id) DO UPDATE SET is_enabled = true)
SELECT old.had, COALESCE((SELECT skill_names FROM upd), old.skill_names) AS skills FROM old";

/// Removes the skill if configured, and disables it either way.
const REMOVE_SQL: &str = "
WITH old AS (SELECT id, $2 = ANY(skill_names) AS had, skill_names FROM agent.agents
             WHERE id = $1 FOR UPDATE),
     upd AS (UPDATE agent.agents a SET skill_names = array_remove(a.skill_names, $2)
             FROM old WHERE a.id = old.id AND old.had RETURNING a.skill_names),
     disable AS (UPDATE agent.agent_tools t SET is_enabled = false
                 FROM old, agent.skills s
                 WHERE t.agent_id = old.id AND s.id = t.skill_id AND s.name = $2 AND t.is_enabled)
SELECT old.had, COALESCE((SELECT skill_names FROM upd), old.skill_names) AS skills FROM old";

/// The outcome of adding or removing one skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whether the skill was configured before.
    pub had: bool,
    /// The configured skills after the change.
    pub skills: Vec<String>,
}

/// Makes `skills` the agent's configured and enabled skills; false when the agent does not
/// exist. Unknown names are the caller's to refuse first (they are skipped here).
pub async fn configure(
    client: &Client,
    agent_id: i64,
    skills: &[String],
) -> Result<bool, ToolError> {
    let row = client.query_one(SET_SQL, &[&agent_id, &skills]).await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

/// Configures and enables `skill`; `None` when the agent does not exist.
pub async fn add(client: &Client, agent_id: i64, skill: &str) -> Result<Option<Change>, ToolError> {
    change(client, ADD_SQL, agent_id, skill).await
}

/// Unconfigures and disables `skill`; `None` when the agent does not exist.
pub async fn remove(
    client: &Client,
    agent_id: i64,
    skill: &str,
) -> Result<Option<Change>, ToolError> {
    change(client, REMOVE_SQL, agent_id, skill).await
}

async fn change(
    client: &Client,
    sql: &'static str,
    agent_id: i64,
    skill: &str,
) -> Result<Option<Change>, ToolError> {
    let Some(row) = client.query_opt(sql, &[&agent_id, &skill]).await? else {
        return Ok(None);
    };
    Ok(Some(Change {
        had: row.try_get("had")?,
        skills: row.try_get("skills")?,
    }))
}
