//! Status and progress changes: which transitions are allowed from which status (the table
//! below), what each writes, and the follow-ups (`settle`). Every refusal is a
//! `GoalError::Refused` naming the reason, raised before anything is written.
//!
//! | from \ to | active          | paused | completed | failed | cancelled | pending          |
//! |-----------|-----------------|--------|-----------|--------|-----------|------------------|
//! | pending   | start¹          | pause  | complete² | fail   | cancel    |                  |
//! | blocked   |                 |        |           | fail   | cancel    | (unblock, auto)  |
//! | active    |                 | pause  | complete² | fail   | cancel    | (failed attempt) |
//! | paused    | resume¹ (was started) | | complete² | fail   | cancel    | resume (never started) |
//! | failed / cancelled |        |        |           |        |           | reopen³          |
//!
//! ¹ no unfinished `blocks` dependency; a start counts an attempt and needs one left.
//! ² a decomposed goal completes only once every live subgoal has.
//! ³ while attempts remain; the goal may then be blocked again by its dependencies.

use gathering_db::{GenericClient, Pool};
use serde_json::{Value, json};

use super::record::{Locked, Note, record};
use super::settle::{Effects, settle};
use super::{Actor, GoalError};

/// A change requested by a caller.
#[derive(Debug, Clone)]
pub enum Transition {
    Start,
    Complete {
        result_summary: Option<String>,
        artifacts: Option<Value>,
    },
    Fail {
        reason: String,
        lessons_learned: Option<String>,
    },
    Pause {
        reason: Option<String>,
    },
    Resume,
    Cancel {
        reason: Option<String>,
    },
    Reopen,
    Progress {
        percent: i32,
        message: Option<String>,
    },
}

/// Applies `t` to goal `id` in one transaction.
pub async fn transition(
    pool: &Pool,
    id: i64,
    t: Transition,
    actor: &Actor,
) -> Result<(), GoalError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    transition_in(&tx, id, t, actor).await?;
    tx.commit().await?;
    Ok(())
}

/// Applies `t` inside the caller's transaction, follow-ups included.
pub async fn transition_in<C: GenericClient>(
    c: &C,
    id: i64,
    t: Transition,
    actor: &Actor,
) -> Result<(), GoalError> {
    let goal = Locked::load(c, id).await?;
    let fx = apply(c, &goal, t, actor).await?;
    settle(c, fx).await
}

fn refuse<T>(msg: impl Into<String>) -> Result<T, GoalError> {
    Err(GoalError::Refused(msg.into()))
}

fn cannot(verb: &str, goal: &Locked) -> GoalError {
    GoalError::Refused(format!("Cannot {verb} goal in '{}' status", goal.status))
}

/// Refuses a start or resume of a goal waiting for its dependencies.
pub(crate) fn check_unblocked(goal: &Locked) -> Result<(), GoalError> {
    if goal.status == "blocked" || goal.blocking > 0 {
        return refuse("Goal is blocked by dependencies");
    }
    Ok(())
}

/// Refuses a start of a goal that is not pending or has no attempt left.
pub(crate) fn check_startable(goal: &Locked) -> Result<(), GoalError> {
    check_unblocked(goal)?;
    if goal.status != "pending" {
        return Err(cannot("start", goal));
    }
    if goal.attempts >= goal.max_attempts {
        return refuse(format!(
            "Goal has no attempts left ({}/{})",
            goal.attempts, goal.max_attempts
        ));
    }
    Ok(())
}

async fn apply<C: GenericClient>(
    c: &C,
    goal: &Locked,
    t: Transition,
    actor: &Actor,
) -> Result<Effects, GoalError> {
    let s = goal.status.as_str();
    let change = match t {
        Transition::Start => {
            check_startable(goal)?;
            StatusChange::to("active", Note::new("started"))
                .message(None)
                .attempt()
                .describe(format!(
                    "Attempt {}/{}",
                    goal.attempts + 1,
                    goal.max_attempts
                ))
        }
        Transition::Complete {
            result_summary,
            artifacts,
        } => {
            if s == "blocked" {
                return refuse("Goal is blocked by dependencies");
            }
            if !matches!(s, "pending" | "active" | "paused") {
                return Err(cannot("complete", goal));
            }
            if goal.is_decomposed {
                let open: i64 = c
                    .query_one(
                        "SELECT count(*) FROM agent.goals WHERE parent_id = $1 AND status NOT IN ('completed', 'cancelled')",
                        &[&goal.id],
                    )
                    .await?
                    .try_get(0)?;
                if open > 0 {
                    return refuse(format!("{open} subgoals are not completed yet"));
                }
            }
            let mut ch = StatusChange::to("completed", Note::new("completed")).message(None);
            ch.note.description = result_summary.clone();
            ch.result_summary = result_summary;
            ch.artifacts = artifacts;
            ch
        }
        Transition::Fail {
            reason,
            lessons_learned,
        } => {
            if goal.is_finished() {
                return Err(cannot("fail", goal));
            }
            let mut ch = StatusChange::to("failed", Note::new("failed"))
                .message(Some(reason.clone()))
                .describe(reason);
            ch.lessons = lessons_learned;
            ch
        }
        Transition::Pause { reason } => {
            if !matches!(s, "pending" | "active") {
                return Err(cannot("pause", goal));
            }
            let ch = StatusChange::to("paused", Note::new("paused"));
            match reason {
                Some(r) => ch.message(Some(r.clone())).describe(r),
                None => ch,
            }
        }
        Transition::Resume => {
            if s != "paused" {
                return Err(cannot("resume", goal));
            }
            check_unblocked(goal)?;
            let to = if goal.started { "active" } else { "pending" };
            StatusChange::to(to, Note::new("resumed")).message(None)
        }
        Transition::Cancel { reason } => {
            if goal.is_finished() {
                return Err(cannot("cancel", goal));
            }
            let ch = StatusChange::to("cancelled", Note::new("cancelled"));
            match reason {
                Some(r) => ch.message(Some(r.clone())).describe(r),
                None => ch,
            }
        }
        Transition::Reopen => {
            if !matches!(s, "failed" | "cancelled") {
                return Err(cannot("reopen", goal));
            }
            if goal.attempts >= goal.max_attempts {
                return refuse(format!(
                    "Goal has no attempts left ({}/{})",
                    goal.attempts, goal.max_attempts
                ));
            }
            StatusChange::to("pending", Note::new("reopened")).message(None)
        }
        Transition::Progress { percent, message } => {
            return set_progress(c, goal, percent, message, actor).await;
        }
    };
    change_status(c, goal, change, actor).await
}

async fn set_progress<C: GenericClient>(
    c: &C,
    goal: &Locked,
    percent: i32,
    message: Option<String>,
    actor: &Actor,
) -> Result<Effects, GoalError> {
    if goal.is_finished() {
        return refuse(format!(
            "Cannot update the progress of a {} goal",
            goal.status
        ));
    }
    if goal.is_decomposed {
        return refuse("The progress of a decomposed goal follows its subgoals");
    }
    let percent = percent.clamp(0, 100);
    c.execute(
        "UPDATE agent.goals SET progress_percent = $2, status_message = COALESCE($3, status_message), \
             last_worked_at = now() WHERE id = $1",
        &[&goal.id, &percent, &message],
    )
    .await?;
    let mut note = Note::new("progress")
        .values(goal.progress, percent)
        .data(json!({"progress_percent": percent}));
    note.description = message;
    record(c, goal.subject(), note, actor).await?;
    Ok(Effects {
        parents: goal.parent_id.into_iter().collect(),
        ..Effects::default()
    })
}

/// One status change and what it writes besides the status.
#[derive(Debug)]
pub(crate) struct StatusChange {
    pub to: &'static str,
    /// `Some(x)`: set `status_message` to `x` (`None` clears it); `None`: keep it.
    pub message: Option<Option<String>>,
    pub add_attempt: bool,
    pub result_summary: Option<String>,
    pub lessons: Option<String>,
    /// Appended to `artifacts` (a JSON array).
    pub artifacts: Option<Value>,
    /// Hours of work to add to `actual_hours`.
    pub hours: f64,
    pub note: Note,
}

impl StatusChange {
    pub(crate) fn to(to: &'static str, note: Note) -> Self {
        StatusChange {
            to,
            message: None,
            add_attempt: false,
            result_summary: None,
            lessons: None,
            artifacts: None,
            hours: 0.0,
            note,
        }
    }

    pub(crate) fn message(mut self, m: Option<String>) -> Self {
        self.message = Some(m);
        self
    }

    pub(crate) fn attempt(mut self) -> Self {
        self.add_attempt = true;
        self
    }

    pub(crate) fn describe(mut self, text: impl Into<String>) -> Self {
        self.note.description = Some(text.into());
        self
    }
}

/// Writes a status change with its activity and events; returns its follow-ups.
pub(crate) async fn change_status<C: GenericClient>(
    c: &C,
    goal: &Locked,
    ch: StatusChange,
    actor: &Actor,
) -> Result<Effects, GoalError> {
    let set_message = ch.message.is_some();
    let message = ch.message.flatten();
    let attempts = i32::from(ch.add_attempt);
    let artifacts = ch.artifacts.map(|a| match a {
        Value::Array(_) => a,
        other => Value::Array(vec![other]),
    });
    c.execute(
        "UPDATE agent.goals SET status = $2::text::public.goal_status, \
             status_message = CASE WHEN $3 THEN $4 ELSE status_message END, \
             attempts = attempts + $5, \
             started_at = CASE WHEN $2 = 'active' THEN COALESCE(started_at, now()) ELSE started_at END, \
             last_worked_at = CASE WHEN $2 IN ('active', 'completed', 'failed') THEN now() ELSE last_worked_at END, \
             completed_at = CASE WHEN $2 IN ('completed', 'failed', 'cancelled') THEN now() ELSE NULL END, \
             progress_percent = CASE WHEN $2 = 'completed' THEN 100 ELSE progress_percent END, \
             result_summary = COALESCE($6, result_summary), \
             lessons_learned = COALESCE($7, lessons_learned), \
             artifacts = CASE WHEN $8::jsonb IS NULL THEN artifacts ELSE artifacts || $8::jsonb END, \
             actual_hours = actual_hours + $9 \
         WHERE id = $1",
        &[
            &goal.id,
            &ch.to,
            &set_message,
            &message,
            &attempts,
            &ch.result_summary,
            &ch.lessons,
            &artifacts,
            &ch.hours.max(0.0),
        ],
    )
    .await?;
    let mut note = ch.note.values(&goal.status, ch.to);
    let mut data = json!({"status": ch.to, "previous": goal.status});
    if let (Some(d), Some(Value::Object(extra))) = (data.as_object_mut(), note.data.take()) {
        d.extend(extra);
    }
    note.data = Some(data);
    record(c, goal.subject(), note, actor).await?;
    Ok(Effects::of_status_change(goal, ch.to))
}
