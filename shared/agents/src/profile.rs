//! An agent as the runtime needs it: persona, model and tuning, in one query.

use gathering_db::GenericClient;

use crate::AgentError;

#[derive(Debug, Clone)]
pub struct Profile {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub persona_name: Option<String>,
    pub base_prompt: Option<String>,
    pub traits: Vec<String>,
    pub communication_style: String,
    pub specializations: Vec<String>,
    pub languages: Vec<String>,
    pub temperature: f64,
    pub max_tokens: Option<i32>,
    /// `provider/model`, as the gateway addresses it; `None` when the agent has no model.
    pub model: Option<String>,
    pub is_active: bool,
}

const PROFILE_SQL: &str = "
SELECT a.id, a.name, COALESCE(a.role, p.role, 'assistant') AS role, p.display_name AS persona_name,
       COALESCE(p.full_prompt, p.base_prompt) AS base_prompt,
       COALESCE(p.traits, '{}') AS traits, COALESCE(p.communication_style, 'balanced') AS style,
       COALESCE(p.specializations, '{}') AS specializations, COALESCE(p.languages, '{fr,en}') AS languages,
       a.temperature, COALESCE(a.max_tokens, m.max_output) AS max_tokens,
       CASE WHEN pr.name IS NOT NULL AND m.model_name IS NOT NULL THEN pr.name || '/' || m.model_name END AS model,
       a.is_active
FROM agent.agents a
LEFT JOIN agent.personas p ON p.id = a.persona_id
LEFT JOIN agent.models m ON m.id = a.model_id
LEFT JOIN agent.providers pr ON pr.id = m.provider_id
WHERE a.id = $1";

pub async fn load<C: GenericClient>(c: &C, agent_id: i64) -> Result<Profile, AgentError> {
    let stmt = c.prepare_cached(PROFILE_SQL).await?;
    let row = c
        .query_opt(&stmt, &[&agent_id])
        .await?
        .ok_or(AgentError::NotFound(agent_id))?;
    Ok(Profile {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        persona_name: row.try_get("persona_name")?,
        base_prompt: row.try_get("base_prompt")?,
        traits: row.try_get("traits")?,
        communication_style: row.try_get("style")?,
        specializations: row.try_get("specializations")?,
        languages: row.try_get("languages")?,
        temperature: row.try_get("temperature")?,
        max_tokens: row.try_get("max_tokens")?,
        model: row.try_get("model")?,
        is_active: row.try_get("is_active")?,
    })
}
