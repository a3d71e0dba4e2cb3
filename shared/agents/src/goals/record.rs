//! The two things every goal change leaves behind, written in the change's transaction: an
//! activity row (`agent.goal_activities`, the goal's audit trail with its actor) and events on
//! `/ws` — `goal.<activity>` on topics `goals`, `goals:{id}` and `agents:{agent_id}`, plus the
//! dashboard Activity page's `activity` event (contract §4.1) on topic `activity`. Also the
//! locked read of a goal that each change starts from.

use gathering_db::GenericClient;
use gathering_events::{NewEvent, publish_in};
use serde_json::{Value, json};

use super::{Actor, GoalError};

/// A goal as a change sees it, read under `FOR UPDATE`.
#[derive(Debug, Clone)]
pub(crate) struct Locked {
    pub id: i64,
    pub agent_id: i64,
    pub parent_id: Option<i64>,
    pub title: String,
    pub status: String,
    pub progress: i32,
    pub is_decomposed: bool,
    pub attempts: i32,
    pub max_attempts: i32,
    pub started: bool,
    pub background_task_id: Option<i64>,
    /// `metadata.auto_complete` (default true): a decomposed goal completes with its subgoals.
    pub auto_complete: bool,
    /// Unfinished `blocks` dependencies.
    pub blocking: i64,
}

const LOCK_SQL: &str = "
SELECT g.id, g.agent_id, g.parent_id, g.title, g.status::text AS status, g.progress_percent,
       g.is_decomposed, g.attempts, g.max_attempts, g.started_at IS NOT NULL AS started,
       g.background_task_id,
       COALESCE(g.metadata->>'auto_complete', 'true') <> 'false' AS auto_complete,
       (SELECT count(*) FROM agent.goal_dependencies d JOIN agent.goals t ON t.id = d.depends_on_id
         WHERE d.goal_id = g.id AND d.dependency_type = 'blocks'
           AND t.status NOT IN ('completed', 'cancelled')) AS blocking
FROM agent.goals g WHERE g.id = $1 FOR UPDATE OF g";

impl Locked {
    pub(crate) async fn load<C: GenericClient>(c: &C, id: i64) -> Result<Locked, GoalError> {
        let row = c
            .query_opt(LOCK_SQL, &[&id])
            .await?
            .ok_or_else(GoalError::goal_not_found)?;
        Ok(Locked {
            id: row.try_get("id")?,
            agent_id: row.try_get("agent_id")?,
            parent_id: row.try_get("parent_id")?,
            title: row.try_get("title")?,
            status: row.try_get("status")?,
            progress: row.try_get("progress_percent")?,
            is_decomposed: row.try_get("is_decomposed")?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            started: row.try_get("started")?,
            background_task_id: row.try_get("background_task_id")?,
            auto_complete: row.try_get("auto_complete")?,
            blocking: row.try_get("blocking")?,
        })
    }

    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject {
            id: self.id,
            agent_id: self.agent_id,
            title: &self.title,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        super::FINISHED.contains(&self.status.as_str())
    }
}

/// The goal an activity is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub id: i64,
    pub agent_id: i64,
    pub title: &'a str,
}

/// One activity: its type (`created`, `status_changed`…), text, values before and after, and
/// model usage when a model call made it.
#[derive(Debug, Default)]
pub(crate) struct Note {
    pub kind: &'static str,
    pub description: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub tokens: i32,
    pub duration_ms: i32,
    /// Extra fields of the `goal.<kind>` event.
    pub data: Option<Value>,
}

impl Note {
    pub(crate) fn new(kind: &'static str) -> Self {
        Note {
            kind,
            ..Default::default()
        }
    }

    pub(crate) fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    pub(crate) fn values(mut self, old: impl ToString, new: impl ToString) -> Self {
        self.old = Some(old.to_string());
        self.new = Some(new.to_string());
        self
    }

    pub(crate) fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Writes the activity row and publishes its events, in the caller's transaction.
pub(crate) async fn record<C: GenericClient>(
    c: &C,
    goal: Subject<'_>,
    note: Note,
    actor: &Actor,
) -> Result<(), GoalError> {
    let row = c
        .query_one(
            "INSERT INTO agent.goal_activities (goal_id, activity_type, description, old_value, new_value, \
                 actor_type, actor_id, tokens_used, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING id, to_jsonb(created_at) AS at",
            &[
                &goal.id,
                &note.kind,
                &note.description,
                &note.old,
                &note.new,
                &actor.kind_str(),
                &actor.id,
                &note.tokens,
                &note.duration_ms,
            ],
        )
        .await?;
    let activity_id: i64 = row.try_get("id")?;
    let at: Value = row.try_get("at")?;
    let mut payload = json!({
        "goal_id": goal.id,
        "agent_id": goal.agent_id,
        "title": goal.title,
        "activity": note.kind,
        "description": note.description,
        "old_value": note.old,
        "new_value": note.new,
        "actor_type": actor.kind_str(),
        "actor_id": actor.id,
    });
    if let (Some(p), Some(Value::Object(extra))) = (payload.as_object_mut(), note.data) {
        p.extend(extra);
    }
    let goal_event = NewEvent::new(format!("goal.{}", note.kind), payload)
        .topic("goals")
        .topic(format!("goals:{}", goal.id))
        .topic(format!("agents:{}", goal.agent_id))
        .source("goals");
    let actor_name = actor.id.clone().unwrap_or_else(|| "system".into());
    let activity = NewEvent::new(
        "activity",
        json!({
            "id": format!("goal-activity-{activity_id}"),
            "type": format!("goal_{}", note.kind),
            "timestamp": at,
            "actor": {"id": actor.id, "name": actor_name, "type": actor.kind_str()},
            "subject": {"type": "goal", "id": goal.id, "name": goal.title},
            "message": note.description.clone().unwrap_or_else(|| format!("Goal '{}': {}", goal.title, note.kind)),
        }),
    )
    .topic("activity")
    .source("goals");
    publish_in(c, &[goal_event, activity]).await?;
    Ok(())
}
