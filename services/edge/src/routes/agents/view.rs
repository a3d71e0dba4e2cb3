//! How an agent reads (contract §2.3): `Agent`, `AgentDetail` and the status, all from one
//! query that joins persona, model, provider, the open session, its project and the enabled
//! skills, so a list of agents is one round trip (no N+1).

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routes::catalogue::rows::{iso, iso_z};
use crate::state::AppState;

/// An agent with everything its views show. `'{}'`-style array literals are avoided on purpose
/// (`ARRAY[]::text[]`): the SQL is assembled with `concat!`.
macro_rules! select {
    () => {
        "SELECT a.id, a.name, COALESCE(a.role, p.role, 'assistant') AS role,
                pr.name AS provider, m.model_name AS model,
                CASE WHEN a.processing_until > now() THEN 'busy'
                     WHEN a.status = 'busy' THEN 'idle' ELSE a.status END AS status,
                COALESCE(a.processing_until > now(), false) AS is_processing,
                a.competencies, a.can_review, a.created_at,
                GREATEST(a.last_active_at, s.last_activity_at) AS last_activity,
                COALESCE(p.traits, ARRAY[]::text[]) AS traits,
                COALESCE(p.communication_style, 'balanced') AS communication_style,
                COALESCE(p.specializations, ARRAY[]::text[]) AS specializations,
                COALESCE(p.languages, ARRAY['fr', 'en']) AS languages,
                COALESCE(a.max_tokens, m.max_output, 4096) AS max_tokens, a.temperature,
                s.id AS session_id, s.working_files, s.pending_actions, s.total_messages,
                s.last_activity_at AS session_activity,
                NULLIF(s.current_task_title, '') AS current_task, pj.name AS project,
                ARRAY(SELECT sk.name FROM agent.agent_tools t JOIN agent.skills sk ON sk.id = t.skill_id
                      WHERE t.agent_id = a.id AND t.is_enabled AND sk.is_enabled
                      ORDER BY sk.name) AS enabled_skills
         FROM agent.agents a
         LEFT JOIN agent.personas p ON p.id = a.persona_id
         LEFT JOIN agent.models m ON m.id = a.model_id
         LEFT JOIN agent.providers pr ON pr.id = m.provider_id
         LEFT JOIN agent.sessions s ON s.agent_id = a.id AND s.ended_at IS NULL
         LEFT JOIN project.projects pj ON pj.id = s.project_id "
    };
}

const LIST_SQL: &str = concat!(select!(), "ORDER BY a.id");
const ONE_SQL: &str = concat!(select!(), "WHERE a.id = $1");

/// Idle time after which a session needs a resume summary (the runtime's rule, A1).
const RESUME_AFTER_SECS: i64 = 3600;

pub struct AgentView {
    id: i64,
    name: String,
    role: String,
    provider: String,
    model: String,
    status: String,
    is_processing: bool,
    competencies: Vec<String>,
    can_review: Vec<String>,
    created_at: DateTime<Utc>,
    last_activity: Option<DateTime<Utc>>,
    traits: Vec<String>,
    communication_style: String,
    specializations: Vec<String>,
    languages: Vec<String>,
    max_tokens: i32,
    temperature: f64,
    session: Option<SessionView>,
    current_task: Option<String>,
    project: Option<String>,
    /// Skills the agent can use (enabled for it and globally).
    enabled: Vec<String>,
}

struct SessionView {
    working_files: Vec<String>,
    pending_actions: Vec<String>,
    total_messages: i32,
    last_activity: DateTime<Utc>,
}

impl SessionView {
    fn idle_secs(&self) -> i64 {
        (Utc::now() - self.last_activity).num_seconds().max(0)
    }

    fn needs_resume(&self) -> bool {
        self.total_messages > 0 && self.idle_secs() > RESUME_AFTER_SECS
    }
}

/// Time since the last activity as upstream words it (`3 minute(s)`, `quelques secondes`).
fn time_since(secs: i64) -> String {
    if secs >= 86_400 {
        format!("{} jour(s)", secs / 86_400)
    } else if secs >= 3600 {
        format!("{} heure(s)", secs / 3600)
    } else if secs >= 60 {
        format!("{} minute(s)", secs / 60)
    } else {
        "quelques secondes".into()
    }
}

/// Skills and tool counts as the runtime loads them: enabled skills that have tools in the
/// registry.
pub struct Loaded {
    pub skills: Vec<String>,
    pub tools_count: usize,
}

pub fn loaded(state: &AppState, enabled: &[String]) -> Loaded {
    let per_skill = state.tools.registry().tools_per_skill();
    let skills: Vec<String> = enabled
        .iter()
        .filter(|s| per_skill.get(s.as_str()).is_some_and(|n| *n > 0))
        .cloned()
        .collect();
    let tools_count = skills.iter().filter_map(|s| per_skill.get(s)).sum();
    Loaded {
        skills,
        tools_count,
    }
}

impl AgentView {
    fn from_row(r: &Row, default_model: &str) -> Result<Self, PgError> {
        // An agent without a model runs on the runtime's default (`provider/model`).
        let (def_provider, def_model) =
            default_model.split_once('/').unwrap_or(("", default_model));
        let session = match r.try_get::<_, Option<i64>>("session_id")? {
            Some(_) => Some(SessionView {
                working_files: r.try_get("working_files")?,
                pending_actions: r.try_get("pending_actions")?,
                total_messages: r.try_get("total_messages")?,
                last_activity: r.try_get("session_activity")?,
            }),
            None => None,
        };
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            provider: r
                .try_get::<_, Option<String>>("provider")?
                .unwrap_or_else(|| def_provider.to_owned()),
            model: r
                .try_get::<_, Option<String>>("model")?
                .unwrap_or_else(|| def_model.to_owned()),
            status: r.try_get("status")?,
            is_processing: r.try_get("is_processing")?,
            competencies: r.try_get("competencies")?,
            can_review: r.try_get("can_review")?,
            created_at: r.try_get("created_at")?,
            last_activity: r.try_get("last_activity")?,
            traits: r.try_get("traits")?,
            communication_style: r.try_get("communication_style")?,
            specializations: r.try_get("specializations")?,
            languages: r.try_get("languages")?,
            max_tokens: r.try_get("max_tokens")?,
            temperature: r.try_get("temperature")?,
            session,
            current_task: r.try_get("current_task")?,
            project: r.try_get("project")?,
            enabled: r.try_get("enabled_skills")?,
        })
    }

    /// `Agent`.
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "competencies": self.competencies,
            "can_review": self.can_review,
            "current_task": self.current_task,
            "created_at": iso_z(self.created_at),
            "last_activity": self.last_activity.map(iso_z),
        })
    }

    /// `AgentDetail`.
    pub fn detail(&self, state: &AppState) -> Value {
        let mut out = self.summary();
        let loaded = loaded(state, &self.enabled);
        out["persona"] = json!({
            "name": self.name,
            "role": self.role,
            "traits": self.traits,
            "communication_style": self.communication_style,
            "specializations": self.specializations,
            "languages": self.languages,
        });
        out["config"] = json!({
            "provider": self.provider,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "competencies": self.competencies,
            "can_review": self.can_review,
        });
        out["session"] = self.session.as_ref().map_or(Value::Null, |s| {
            json!({
                "status": "active",
                "working_files": s.working_files,
                "pending_actions": s.pending_actions,
                "message_count": s.total_messages,
                "needs_resume": s.needs_resume(),
                "time_since": time_since(s.idle_secs()),
            })
        });
        out["skills"] = json!(loaded.skills);
        out["tools_count"] = json!(loaded.tools_count);
        out
    }

    /// `GET /agents/{id}/status`. Without a session yet, the session reads as `inactive`.
    pub fn status(&self, state: &AppState) -> Value {
        let loaded = loaded(state, &self.enabled);
        let session = match &self.session {
            Some(s) => json!({
                "status": "active",
                "last_activity": iso(s.last_activity),
                "time_since": time_since(s.idle_secs()),
                "needs_resume": s.needs_resume(),
                "working_files": s.working_files,
                "pending_actions": s.pending_actions,
                "current_task": self.current_task,
            }),
            None => json!({
                "status": "inactive",
                "last_activity": iso(self.created_at),
                "time_since": time_since((Utc::now() - self.created_at).num_seconds().max(0)),
                "needs_resume": false,
                "working_files": [],
                "pending_actions": [],
                "current_task": null,
            }),
        };
        json!({
            "agent_id": self.id,
            "name": self.name,
            "role": self.role,
            "provider": self.provider,
            "model": self.model,
            "is_processing": self.is_processing,
            "session": session,
            "skills": loaded.skills,
            "tools_count": loaded.tools_count,
            "project": self.project,
        })
    }
}

pub async fn all<C: GenericClient>(c: &C, state: &AppState) -> Result<Vec<AgentView>, ApiError> {
    let stmt = c.prepare_cached(LIST_SQL).await?;
    let default_model = &state.agents.config.default_model;
    Ok(c.query(&stmt, &[])
        .await?
        .iter()
        .map(|r| AgentView::from_row(r, default_model))
        .collect::<Result<_, _>>()?)
}

/// The agent, or 404 "Agent {id} not found".
pub async fn one<C: GenericClient>(
    c: &C,
    state: &AppState,
    id: i64,
) -> Result<AgentView, ApiError> {
    let stmt = c.prepare_cached(ONE_SQL).await?;
    let row = c
        .query_opt(&stmt, &[&id])
        .await?
        .ok_or_else(|| super::not_found(id))?;
    Ok(AgentView::from_row(
        &row,
        &state.agents.config.default_model,
    )?)
}

#[cfg(test)]
mod tests {
    use super::time_since;

    #[test]
    fn time_since_reads_like_upstream() {
        assert_eq!(time_since(5), "quelques secondes");
        assert_eq!(time_since(125), "2 minute(s)");
        assert_eq!(time_since(7200), "2 heure(s)");
        assert_eq!(time_since(3 * 86_400 + 5), "3 jour(s)");
    }
}
