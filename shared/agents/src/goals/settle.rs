//! What a change sets off, in its own transaction: blocked dependents of a goal that finished
//! become pending, and the parents above a changed subgoal get their progress (and, when every
//! live subgoal has completed, their completion) recomputed, up to the root.
//!
//! A worklist rather than recursion: a parent completing is itself a finished goal (its
//! dependents unblock) and a changed subgoal (its own parent recomputes). Locks are taken child
//! first, then parent, the same order every change uses.

use gathering_db::GenericClient;
use serde_json::json;

use super::record::{Locked, Note, Subject, record};
use super::{Actor, GoalError};

/// Follow-ups of a change.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Goals that completed or were cancelled: their `blocks` dependents may unblock.
    pub finished: Vec<i64>,
    /// Parents whose subgoals changed.
    pub parents: Vec<i64>,
    /// Goals whose own dependencies changed (block or unblock them).
    pub reconcile: Vec<i64>,
}

impl Effects {
    pub(crate) fn of_status_change(goal: &Locked, to: &str) -> Effects {
        let mut fx = Effects::default();
        if matches!(to, "completed" | "cancelled") {
            fx.finished.push(goal.id);
        }
        if to == "pending" {
            fx.reconcile.push(goal.id);
        }
        fx.parents.extend(goal.parent_id);
        fx
    }
}

/// Bound on the work one change can set off (a tree is at most `MAX_DEPTH` deep; dependents
/// are bounded by what exists): a runaway is an error, not a hang.
const MAX_STEPS: usize = 10_000;

pub(crate) async fn settle<C: GenericClient>(c: &C, mut fx: Effects) -> Result<(), GoalError> {
    for _ in 0..MAX_STEPS {
        if let Some(id) = fx.finished.pop() {
            let rows = c
                .query(
                    "SELECT DISTINCT goal_id FROM agent.goal_dependencies \
                     WHERE depends_on_id = $1 AND dependency_type = 'blocks' ORDER BY goal_id",
                    &[&id],
                )
                .await?;
            for r in rows {
                fx.reconcile.push(r.try_get(0)?);
            }
        } else if let Some(id) = fx.reconcile.pop() {
            reconcile(c, id).await?;
        } else if let Some(id) = fx.parents.pop() {
            roll_up(c, id, &mut fx).await?;
        } else {
            return Ok(());
        }
    }
    Err(GoalError::Refused(
        "This change affects too many goals at once".into(),
    ))
}

/// A pending goal with an unfinished `blocks` dependency becomes blocked; a blocked one
/// without any becomes pending.
async fn reconcile<C: GenericClient>(c: &C, id: i64) -> Result<(), GoalError> {
    let row = c
        .query_opt(
            "WITH blocking AS ( \
                 SELECT count(*) AS n FROM agent.goal_dependencies d JOIN agent.goals t ON t.id = d.depends_on_id \
                 WHERE d.goal_id = $1 AND d.dependency_type = 'blocks' AND t.status NOT IN ('completed', 'cancelled')) \
             UPDATE agent.goals g \
             SET status = CASE WHEN g.status = 'pending' THEN 'blocked' ELSE 'pending' END::public.goal_status, \
                 status_message = CASE WHEN g.status = 'pending' THEN 'Waiting for dependencies' ELSE NULL END \
             FROM blocking b \
             WHERE g.id = $1 AND ((g.status = 'pending' AND b.n > 0) OR (g.status = 'blocked' AND b.n = 0)) \
             RETURNING g.status::text AS status, g.agent_id, g.title, b.n",
            &[&id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let status: String = row.try_get("status")?;
    let title: String = row.try_get("title")?;
    let subject = Subject {
        id,
        agent_id: row.try_get("agent_id")?,
        title: &title,
    };
    let blocking: i64 = row.try_get("n")?;
    let note = if status == "blocked" {
        Note::new("blocked")
            .describe(format!("Blocked by {blocking} unfinished dependencies"))
            .values("pending", "blocked")
    } else {
        Note::new("unblocked")
            .describe("Every blocking dependency has finished")
            .values("blocked", "pending")
    };
    record(
        c,
        subject,
        note.data(json!({"status": status})),
        &Actor::system(),
    )
    .await
}

/// Recomputes a decomposed goal from its subgoals; completes it when they all have.
async fn roll_up<C: GenericClient>(c: &C, id: i64, fx: &mut Effects) -> Result<(), GoalError> {
    let goal = match Locked::load(c, id).await {
        Ok(g) => g,
        Err(GoalError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !goal.is_decomposed || goal.is_finished() {
        return Ok(());
    }
    let row = c
        .query_one(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status <> 'cancelled') AS live, \
                    count(*) FILTER (WHERE status = 'completed') AS done, \
                    COALESCE(round(avg(CASE WHEN status = 'completed' THEN 100 ELSE progress_percent END) \
                             FILTER (WHERE status <> 'cancelled')), 0)::int4 AS progress \
             FROM agent.goals WHERE parent_id = $1",
            &[&id],
        )
        .await?;
    if row.try_get::<_, i64>("total")? == 0 {
        // Its last subgoal was deleted: the goal is whole again and tracks its own progress.
        c.execute(
            "UPDATE agent.goals SET is_decomposed = false, decomposition_strategy = NULL WHERE id = $1",
            &[&id],
        )
        .await?;
        return Ok(());
    }
    let live: i64 = row.try_get("live")?;
    let done: i64 = row.try_get("done")?;
    let progress: i32 = row.try_get("progress")?;
    let complete = goal.auto_complete
        && live > 0
        && done == live
        && matches!(goal.status.as_str(), "pending" | "active" | "paused");
    if complete {
        c.execute(
            "UPDATE agent.goals SET status = 'completed', progress_percent = 100, completed_at = now(), \
                 status_message = NULL, result_summary = COALESCE(result_summary, $2) WHERE id = $1",
            &[&id, &format!("All {live} subgoals completed")],
        )
        .await?;
        let note = Note::new("completed")
            .describe(format!("All {live} subgoals completed"))
            .values(&goal.status, "completed")
            .data(json!({"status": "completed", "progress_percent": 100}));
        record(c, goal.subject(), note, &Actor::system()).await?;
        fx.finished.push(id);
        fx.parents.extend(goal.parent_id);
    } else if progress != goal.progress {
        c.execute(
            "UPDATE agent.goals SET progress_percent = $2 WHERE id = $1",
            &[&id, &progress],
        )
        .await?;
        let note = Note::new("progress")
            .describe(format!("{done} of {live} subgoals completed"))
            .values(goal.progress, progress)
            .data(json!({"progress_percent": progress}));
        record(c, goal.subject(), note, &Actor::system()).await?;
        fx.parents.extend(goal.parent_id);
    }
    Ok(())
}
