//! Creating, editing and deleting goals. Input is validated here (sizes, ranges, enumerations)
//! so every caller — route or skill — refuses the same things; references (agent, circle,
//! parent) are checked in the transaction that writes.

use chrono::{DateTime, Utc};
use gathering_db::{GenericClient, Pool};
use gathering_events::{NewEvent, publish_in};
use serde_json::{Value, json};

use super::lifecycle::{Transition, transition_in};
use super::record::{Locked, Note, Subject, record};
use super::settle::{Effects, settle};
use super::{Actor, GoalError, MAX_DEPTH, PRIORITIES};

pub(crate) const MAX_TEXT: usize = 20_000;
pub(crate) const MAX_SHORT_TEXT: usize = 5_000;
const MAX_TAGS: usize = 50;
const MAX_TAG: usize = 100;
const MAX_CONTEXT_BYTES: usize = 64 * 1024;
const MAX_HOURS: f64 = 1_000_000.0;

/// A field's validation failure: (field, message).
pub type FieldError = (&'static str, String);

fn check(errors: &mut Vec<FieldError>, ok: bool, field: &'static str, msg: &str) {
    if !ok {
        errors.push((field, msg.to_owned()));
    }
}

fn text_ok(s: &Option<String>, max: usize) -> bool {
    s.as_ref().is_none_or(|s| s.chars().count() <= max)
}

fn tags_ok(tags: &[String]) -> bool {
    tags.len() <= MAX_TAGS
        && tags
            .iter()
            .all(|t| !t.is_empty() && t.chars().count() <= MAX_TAG)
}

fn hours_ok(h: Option<f64>) -> bool {
    h.is_none_or(|h| h.is_finite() && (0.0..=MAX_HOURS).contains(&h))
}

/// A goal to create.
#[derive(Debug, Clone, Default)]
pub struct NewGoal {
    pub agent_id: i64,
    pub title: String,
    pub description: String,
    pub circle_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub success_criteria: Option<String>,
    pub priority: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub estimated_hours: Option<f64>,
    pub tags: Vec<String>,
    pub context: Value,
    /// `false`: a decomposed goal completes on request only (default: with its subgoals).
    pub auto_complete: Option<bool>,
    pub max_attempts: Option<i32>,
}

impl NewGoal {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        let title_len = self.title.chars().count();
        check(
            &mut e,
            !self.title.trim().is_empty() && title_len <= 255,
            "title",
            "String should have 1 to 255 characters",
        );
        check(
            &mut e,
            self.description.chars().count() <= MAX_TEXT,
            "description",
            "String should have at most 20000 characters",
        );
        check(
            &mut e,
            text_ok(&self.success_criteria, MAX_SHORT_TEXT),
            "success_criteria",
            "String should have at most 5000 characters",
        );
        check(
            &mut e,
            self.priority
                .as_deref()
                .is_none_or(|p| PRIORITIES.contains(&p)),
            "priority",
            "Input should be 'low', 'medium', 'high' or 'critical'",
        );
        check(
            &mut e,
            hours_ok(self.estimated_hours),
            "estimated_hours",
            "Input should be a number from 0 to 1000000",
        );
        check(
            &mut e,
            tags_ok(&self.tags),
            "tags",
            "At most 50 tags of 1 to 100 characters",
        );
        let context_size = serde_json::to_vec(&self.context)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        check(
            &mut e,
            (self.context.is_object() || self.context.is_null())
                && context_size <= MAX_CONTEXT_BYTES,
            "context",
            "Input should be a dictionary of at most 64 KiB",
        );
        check(
            &mut e,
            self.max_attempts.is_none_or(|m| (1..=20).contains(&m)),
            "max_attempts",
            "Input should be between 1 and 20",
        );
        e
    }
}

/// Creates a goal (and, under a parent, marks the parent decomposed and rolls its progress up).
pub async fn create(pool: &Pool, g: &NewGoal, actor: &Actor) -> Result<i64, GoalError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let id = create_in(&tx, g, actor).await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn create_in<C: GenericClient>(
    c: &C,
    g: &NewGoal,
    actor: &Actor,
) -> Result<i64, GoalError> {
    if let Some((field, msg)) = g.validate().into_iter().next() {
        return Err(GoalError::Refused(format!("{field}: {msg}")));
    }
    if c.query_opt("SELECT 1 FROM agent.agents WHERE id = $1", &[&g.agent_id])
        .await?
        .is_none()
    {
        return Err(GoalError::NotFound(format!(
            "Agent {} not found",
            g.agent_id
        )));
    }
    if let Some(circle) = g.circle_id
        && c.query_opt("SELECT 1 FROM circle.circles WHERE id = $1", &[&circle])
            .await?
            .is_none()
    {
        return Err(GoalError::NotFound(format!("Circle {circle} not found")));
    }
    let parent = match g.parent_id {
        Some(p) => Some(lock_parent(c, p).await?),
        None => None,
    };
    let metadata = match g.auto_complete {
        Some(a) => json!({ "auto_complete": a }),
        None => json!({}),
    };
    let context = if g.context.is_null() {
        json!({})
    } else {
        g.context.clone()
    };
    let id: i64 = c
        .query_one(
            "INSERT INTO agent.goals (agent_id, circle_id, parent_id, title, description, success_criteria, \
                 priority, deadline, estimated_hours, tags, context, metadata, max_attempts, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 'medium')::text::public.goal_priority, $8, $9, $10, \
                 $11, $12, COALESCE($13, 3), $14) RETURNING id",
            &[
                &g.agent_id,
                &g.circle_id,
                &g.parent_id,
                &g.title,
                &g.description,
                &g.success_criteria,
                &g.priority,
                &g.deadline,
                &g.estimated_hours,
                &g.tags,
                &context,
                &metadata,
                &g.max_attempts,
                &created_by(actor),
            ],
        )
        .await?
        .try_get(0)?;
    let subject = Subject {
        id,
        agent_id: g.agent_id,
        title: &g.title,
    };
    record(
        c,
        subject,
        Note::new("created").describe(g.title.clone()),
        actor,
    )
    .await?;
    if let Some(parent) = parent {
        adopt(c, &parent, &[(id, g.title.as_str())], "manual", actor).await?;
    }
    Ok(id)
}

pub(crate) fn created_by(actor: &Actor) -> String {
    match &actor.id {
        Some(id) => format!("{}:{id}", actor.kind_str()),
        None => actor.kind_str().to_owned(),
    }
}

/// Locks a goal that is to receive subgoals; refuses finished or too deep parents.
pub(crate) async fn lock_parent<C: GenericClient>(c: &C, id: i64) -> Result<Locked, GoalError> {
    let parent = Locked::load(c, id).await.map_err(|e| match e {
        GoalError::NotFound(_) => GoalError::NotFound("Parent goal not found".into()),
        e => e,
    })?;
    if parent.is_finished() {
        return Err(GoalError::Refused(format!(
            "Cannot add a subgoal to a {} goal",
            parent.status
        )));
    }
    let depth: i32 = c
        .query_one("SELECT depth FROM agent.goals WHERE id = $1", &[&id])
        .await?
        .try_get(0)?;
    if depth + 1 > MAX_DEPTH {
        return Err(GoalError::Refused(format!(
            "Goals nest at most {MAX_DEPTH} levels deep"
        )));
    }
    Ok(parent)
}

/// Records new subgoals under `parent`, marks it decomposed and rolls its progress up.
pub(crate) async fn adopt<C: GenericClient>(
    c: &C,
    parent: &Locked,
    children: &[(i64, &str)],
    strategy: &str,
    actor: &Actor,
) -> Result<(), GoalError> {
    c.execute(
        "UPDATE agent.goals SET is_decomposed = true, \
             decomposition_strategy = COALESCE(decomposition_strategy, $2) WHERE id = $1",
        &[&parent.id, &strategy],
    )
    .await?;
    for (child, title) in children {
        let note = Note::new("subgoal_added")
            .describe(title.to_string())
            .data(json!({"subgoal_id": child}));
        record(c, parent.subject(), note, actor).await?;
    }
    let fx = Effects {
        parents: vec![parent.id],
        ..Effects::default()
    };
    settle(c, fx).await
}

/// Changes to a goal (`PATCH /goals/{id}`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GoalPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub success_criteria: Option<String>,
    pub priority: Option<String>,
    pub status: Option<String>,
    pub progress_percent: Option<i32>,
    pub status_message: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub estimated_hours: Option<f64>,
    pub result_summary: Option<String>,
    pub lessons_learned: Option<String>,
    pub tags: Option<Vec<String>>,
    pub auto_complete: Option<bool>,
    pub max_attempts: Option<i32>,
}

impl GoalPatch {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check(
            &mut e,
            self.title
                .as_ref()
                .is_none_or(|t| !t.trim().is_empty() && t.chars().count() <= 255),
            "title",
            "String should have 1 to 255 characters",
        );
        for (field, value, max) in [
            ("description", &self.description, MAX_TEXT),
            ("success_criteria", &self.success_criteria, MAX_SHORT_TEXT),
            ("status_message", &self.status_message, MAX_SHORT_TEXT),
            ("result_summary", &self.result_summary, MAX_TEXT),
            ("lessons_learned", &self.lessons_learned, MAX_TEXT),
        ] {
            check(&mut e, text_ok(value, max), field, "String is too long");
        }
        check(
            &mut e,
            self.priority
                .as_deref()
                .is_none_or(|p| PRIORITIES.contains(&p)),
            "priority",
            "Input should be 'low', 'medium', 'high' or 'critical'",
        );
        check(
            &mut e,
            self.status
                .as_deref()
                .is_none_or(|s| super::STATUSES.contains(&s)),
            "status",
            "Input should be a goal status",
        );
        check(
            &mut e,
            self.progress_percent.is_none_or(|p| (0..=100).contains(&p)),
            "progress_percent",
            "Input should be between 0 and 100",
        );
        check(
            &mut e,
            hours_ok(self.estimated_hours),
            "estimated_hours",
            "Input should be a number from 0 to 1000000",
        );
        check(
            &mut e,
            self.tags.as_deref().is_none_or(tags_ok),
            "tags",
            "At most 50 tags of 1 to 100 characters",
        );
        check(
            &mut e,
            self.max_attempts.is_none_or(|m| (1..=20).contains(&m)),
            "max_attempts",
            "Input should be between 1 and 20",
        );
        e
    }

    fn changed_fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                f.push(name);
            }
        };
        add(self.title.is_some(), "title");
        add(self.description.is_some(), "description");
        add(self.success_criteria.is_some(), "success_criteria");
        add(self.priority.is_some(), "priority");
        add(self.status_message.is_some(), "status_message");
        add(self.deadline.is_some(), "deadline");
        add(self.estimated_hours.is_some(), "estimated_hours");
        add(self.result_summary.is_some(), "result_summary");
        add(self.lessons_learned.is_some(), "lessons_learned");
        add(self.tags.is_some(), "tags");
        add(self.auto_complete.is_some(), "auto_complete");
        add(self.max_attempts.is_some(), "max_attempts");
        f
    }
}

/// Applies a patch: plain fields, then progress, then a status change through the same rules
/// as the lifecycle routes; all or nothing.
pub async fn update(pool: &Pool, id: i64, p: &GoalPatch, actor: &Actor) -> Result<(), GoalError> {
    if let Some((field, msg)) = p.validate().into_iter().next() {
        return Err(GoalError::Refused(format!("{field}: {msg}")));
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let goal = Locked::load(&tx, id).await?;
    let fields = p.changed_fields();
    if !fields.is_empty() {
        let auto = p.auto_complete.map(|a| json!({ "auto_complete": a }));
        tx.execute(
            "UPDATE agent.goals SET title = COALESCE($2, title), description = COALESCE($3, description), \
                 success_criteria = COALESCE($4, success_criteria), \
                 priority = COALESCE($5::text::public.goal_priority, priority), \
                 status_message = COALESCE($6, status_message), deadline = COALESCE($7, deadline), \
                 estimated_hours = COALESCE($8, estimated_hours), result_summary = COALESCE($9, result_summary), \
                 lessons_learned = COALESCE($10, lessons_learned), tags = COALESCE($11, tags), \
                 metadata = CASE WHEN $12::jsonb IS NULL THEN metadata ELSE metadata || $12::jsonb END, \
                 max_attempts = COALESCE($13, max_attempts) \
             WHERE id = $1",
            &[
                &id,
                &p.title,
                &p.description,
                &p.success_criteria,
                &p.priority,
                &p.status_message,
                &p.deadline,
                &p.estimated_hours,
                &p.result_summary,
                &p.lessons_learned,
                &p.tags,
                &auto,
                &p.max_attempts,
            ],
        )
        .await?;
        let title = p.title.clone().unwrap_or_else(|| goal.title.clone());
        let subject = Subject {
            id,
            agent_id: goal.agent_id,
            title: &title,
        };
        let note = Note::new("updated")
            .describe(format!("Updated {}", fields.join(", ")))
            .data(json!({"fields": fields}));
        record(&tx, subject, note, actor).await?;
        if p.auto_complete == Some(true) {
            // Turning automatic completion on may complete a goal whose subgoals are done.
            settle(
                &tx,
                Effects {
                    parents: vec![id],
                    ..Effects::default()
                },
            )
            .await?;
        }
    }
    if let Some(percent) = p.progress_percent {
        let message = p.status_message.clone();
        transition_in(&tx, id, Transition::Progress { percent, message }, actor).await?;
    }
    if let Some(status) = p.status.as_deref()
        && status != goal.status
    {
        let t = status_transition(status, &goal, p)?;
        transition_in(&tx, id, t, actor).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The lifecycle change a `PATCH {status}` asks for.
fn status_transition(to: &str, goal: &Locked, p: &GoalPatch) -> Result<Transition, GoalError> {
    Ok(match to {
        "active" if goal.status == "paused" => Transition::Resume,
        "active" => Transition::Start,
        "paused" => Transition::Pause {
            reason: p.status_message.clone(),
        },
        "completed" => Transition::Complete {
            result_summary: p.result_summary.clone(),
            artifacts: None,
        },
        "failed" => Transition::Fail {
            reason: p
                .status_message
                .clone()
                .unwrap_or_else(|| "Marked as failed".into()),
            lessons_learned: p.lessons_learned.clone(),
        },
        "cancelled" => Transition::Cancel {
            reason: p.status_message.clone(),
        },
        "pending" if goal.status == "paused" => Transition::Resume,
        "pending" => Transition::Reopen,
        _ => {
            return Err(GoalError::Refused(
                "'blocked' is set by dependencies, not by hand".into(),
            ));
        }
    })
}

/// Deletes a goal and its subtree. Refused while the goal or one of its subgoals is active.
/// Returns the live background tasks of the deleted goals, for the caller to cancel.
pub async fn delete(pool: &Pool, id: i64, actor: &Actor) -> Result<Vec<i64>, GoalError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let goal = Locked::load(&tx, id).await?;
    if goal.status == "active" {
        return Err(GoalError::Refused(
            "Cannot delete active goal. Pause or complete it first.".into(),
        ));
    }
    let row = tx
        .query_one(
            "WITH RECURSIVE t (id, lvl) AS ( \
                 SELECT id, 0 FROM agent.goals WHERE id = $1 \
                 UNION ALL SELECT g.id, t.lvl + 1 FROM agent.goals g JOIN t ON g.parent_id = t.id WHERE t.lvl < 100) \
             SELECT \
                 (SELECT count(*) FROM agent.goals g WHERE g.id IN (SELECT id FROM t) AND g.status = 'active') AS active, \
                 ARRAY(SELECT DISTINCT d.goal_id FROM agent.goal_dependencies d \
                       WHERE d.depends_on_id IN (SELECT id FROM t) AND d.goal_id NOT IN (SELECT id FROM t)) AS dependents, \
                 ARRAY(SELECT g.background_task_id FROM agent.goals g JOIN circle.background_tasks b ON b.id = g.background_task_id \
                       WHERE g.id IN (SELECT id FROM t) AND b.status IN ('pending', 'running', 'paused')) AS tasks",
            &[&id],
        )
        .await?;
    let active: i64 = row.try_get("active")?;
    if active > 0 {
        return Err(GoalError::Refused(
            "Cannot delete a goal with an active subgoal. Pause or complete it first.".into(),
        ));
    }
    let dependents: Vec<i64> = row.try_get("dependents")?;
    let tasks: Vec<i64> = row.try_get("tasks")?;
    tx.execute("DELETE FROM agent.goals WHERE id = $1", &[&id])
        .await?;
    publish_in(
        &tx,
        &[NewEvent::new(
            "goal.deleted",
            json!({"goal_id": id, "agent_id": goal.agent_id, "title": goal.title, "actor_type": actor.kind_str(), "actor_id": actor.id}),
        )
        .topic("goals")
        .topic(format!("goals:{id}"))
        .topic(format!("agents:{}", goal.agent_id))
        .source("goals")],
    )
    .await?;
    if let Some(parent) = goal.parent_id {
        let p = Locked::load(&tx, parent).await?;
        let note = Note::new("subgoal_removed")
            .describe(goal.title.clone())
            .data(json!({"subgoal_id": id}));
        record(&tx, p.subject(), note, actor).await?;
    }
    let fx = Effects {
        parents: goal.parent_id.into_iter().collect(),
        reconcile: dependents,
        ..Effects::default()
    };
    settle(&tx, fx).await?;
    tx.commit().await?;
    Ok(tasks)
}
