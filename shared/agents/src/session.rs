//! The agent's working session (`agent.sessions`, one open per agent): recent messages, files
//! it works on, its current task, and whether it resumes after a long pause (A1).

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use serde_json::{Value, json};

use crate::AgentError;

/// Messages kept in the session's window.
const WINDOW: usize = 20;
/// Idle time after which the next message resumes the session with a summary.
const RESUME_AFTER_SECS: i64 = 3600;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub agent_id: i64,
    pub project_id: Option<i64>,
    pub working_files: Vec<String>,
    pub pending_actions: Vec<String>,
    pub recent_messages: Vec<Value>,
    pub current_task_id: Option<String>,
    pub current_task_title: Option<String>,
    pub current_task_progress: Option<String>,
    pub total_messages: i32,
    pub last_activity_at: DateTime<Utc>,
}

impl Session {
    pub fn needs_resume(&self) -> bool {
        self.total_messages > 0
            && (Utc::now() - self.last_activity_at).num_seconds() > RESUME_AFTER_SECS
    }

    /// "## Reprise de Session" text: the last exchanges before the pause.
    pub fn resume_summary(&self) -> Option<String> {
        if !self.needs_resume() {
            return None;
        }
        let idle = (Utc::now() - self.last_activity_at).num_minutes();
        let mut s = format!("Dernière activité il y a {idle} minutes. Derniers échanges :\n");
        for m in self.recent_messages.iter().rev().take(4).rev() {
            let role = m["role"].as_str().unwrap_or("?");
            let content: String = m["content"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            s.push_str(&format!("- {role}: {content}\n"));
        }
        Some(s)
    }

    pub fn task_line(&self) -> Option<String> {
        self.current_task_title
            .as_ref()
            .map(|t| match &self.current_task_progress {
                Some(p) if !p.is_empty() => format!("{t} ({p})"),
                _ => t.clone(),
            })
    }
}

const FIND_SQL: &str = "
SELECT id, agent_id, project_id, working_files, pending_actions, recent_messages, current_task_id,
       current_task_title, current_task_progress, total_messages, last_activity_at
FROM agent.sessions WHERE agent_id = $1 AND ended_at IS NULL";

const OPEN_SQL: &str = "
INSERT INTO agent.sessions (agent_id) VALUES ($1)
ON CONFLICT (agent_id) WHERE ended_at IS NULL DO UPDATE SET agent_id = EXCLUDED.agent_id
RETURNING id, agent_id, project_id, working_files, pending_actions, recent_messages, current_task_id,
          current_task_title, current_task_progress, total_messages, last_activity_at";

/// The agent's open session, created on first use.
pub async fn open<C: GenericClient>(c: &C, agent_id: i64) -> Result<Session, AgentError> {
    // Usually the session exists: read it without writing anything.
    let find = c.prepare_cached(FIND_SQL).await?;
    let r = match c.query_opt(&find, &[&agent_id]).await? {
        Some(r) => r,
        None => {
            let stmt = c.prepare_cached(OPEN_SQL).await?;
            c.query_one(&stmt, &[&agent_id]).await?
        }
    };
    let recent: Value = r.try_get("recent_messages")?;
    Ok(Session {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        project_id: r.try_get("project_id")?,
        working_files: r.try_get("working_files")?,
        pending_actions: r.try_get("pending_actions")?,
        recent_messages: recent.as_array().cloned().unwrap_or_default(),
        current_task_id: r.try_get("current_task_id")?,
        current_task_title: r.try_get("current_task_title")?,
        current_task_progress: r.try_get("current_task_progress")?,
        total_messages: r.try_get("total_messages")?,
        last_activity_at: r.try_get("last_activity_at")?,
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Records one exchange in the session window.
pub async fn record_exchange<C: GenericClient>(
    c: &C,
    session: &Session,
    message: &str,
    reply: &str,
) -> Result<(), AgentError> {
    let now = Utc::now().to_rfc3339();
    let mut recent = session.recent_messages.clone();
    recent.push(json!({"role": "user", "content": truncate(message, 2000), "timestamp": now}));
    recent.push(json!({"role": "assistant", "content": truncate(reply, 2000), "timestamp": now}));
    let skip = recent.len().saturating_sub(WINDOW);
    let recent = Value::from(recent.split_off(skip));
    c.execute(
        "UPDATE agent.sessions SET recent_messages = $2, last_message = $3, last_response = $4, \
             total_messages = total_messages + 2, last_activity_at = now(), needs_resume = false \
         WHERE id = $1",
        &[
            &session.id,
            &recent,
            &truncate(message, 500),
            &truncate(reply, 500),
        ],
    )
    .await?;
    Ok(())
}

/// Adds a file to the session's working set (deduplicated, last 50 kept).
pub async fn track_file<C: GenericClient>(
    c: &C,
    agent_id: i64,
    path: &str,
) -> Result<(), AgentError> {
    open(c, agent_id).await?;
    c.execute(
        "UPDATE agent.sessions SET working_files = \
             (array_remove(working_files, $2) || ARRAY[$2])[greatest(1, cardinality(array_remove(working_files, $2)) - 48):], \
             last_activity_at = now() \
         WHERE agent_id = $1 AND ended_at IS NULL",
        &[&agent_id, &path],
    )
    .await?;
    Ok(())
}

pub async fn set_task<C: GenericClient>(
    c: &C,
    agent_id: i64,
    task_id: Option<&str>,
    title: Option<&str>,
    progress: Option<&str>,
) -> Result<(), AgentError> {
    open(c, agent_id).await?;
    c.execute(
        "UPDATE agent.sessions SET current_task_id = $2, current_task_title = $3, current_task_progress = $4, \
             last_activity_at = now() \
         WHERE agent_id = $1 AND ended_at IS NULL",
        &[&agent_id, &task_id, &title, &progress],
    )
    .await?;
    Ok(())
}
