//! The dependency graph between goals. It stays acyclic: an edge `a → b` ("a depends on b") is
//! refused when `b` already reaches `a`. Every dependency write takes one transaction-scoped
//! advisory lock first, so two concurrent edges (`a → b` and `b → a`) cannot each pass the
//! check and close a cycle together. A `blocks` edge to an unfinished goal blocks a pending
//! goal at once; removing the last such edge unblocks it.

use gathering_db::Pool;
use serde_json::json;

use super::record::{Locked, Note, record};
use super::settle::{Effects, settle};
use super::{Actor, DEPENDENCY_TYPES, GoalError};

/// Serialises dependency writes ("GOALDEPS").
const DEPENDENCY_LOCK: i64 = 0x474F_414C_4445_5053;

/// Records that `goal_id` depends on `depends_on_id`.
pub async fn add_dependency(
    pool: &Pool,
    goal_id: i64,
    depends_on_id: i64,
    dependency_type: &str,
    actor: &Actor,
) -> Result<(), GoalError> {
    if !DEPENDENCY_TYPES.contains(&dependency_type) {
        return Err(GoalError::Refused(
            "dependency_type must be 'blocks', 'informs' or 'enhances'".into(),
        ));
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DEPENDENCY_LOCK])
        .await?;
    let goal = Locked::load(&tx, goal_id).await?;
    let target = tx
        .query_opt(
            "SELECT status::text AS status, title FROM agent.goals WHERE id = $1",
            &[&depends_on_id],
        )
        .await?
        .ok_or_else(|| GoalError::NotFound("Dependency goal not found".into()))?;
    if goal_id == depends_on_id {
        return Err(GoalError::Refused("Goal cannot depend on itself".into()));
    }
    let target_status: String = target.try_get("status")?;
    let target_title: String = target.try_get("title")?;
    let row = tx
        .query_one(
            "SELECT \
               EXISTS (SELECT 1 FROM agent.goal_dependencies WHERE goal_id = $1 AND depends_on_id = $2) AS duplicate, \
               EXISTS (WITH RECURSIVE r (id) AS ( \
                         SELECT depends_on_id FROM agent.goal_dependencies WHERE goal_id = $2 \
                         UNION SELECT d.depends_on_id FROM agent.goal_dependencies d JOIN r ON d.goal_id = r.id) \
                       SELECT 1 FROM r WHERE id = $1) AS cycle, \
               EXISTS (SELECT 1 FROM public.goals_dashboard g \
                       WHERE (g.id = $1 AND $2 = ANY (g.ancestors)) OR (g.id = $2 AND $1 = ANY (g.ancestors))) AS lineage",
            &[&goal_id, &depends_on_id],
        )
        .await?;
    if row.try_get::<_, bool>("duplicate")? {
        return Err(GoalError::Refused(format!(
            "Goal {goal_id} already depends on goal {depends_on_id}"
        )));
    }
    if row.try_get::<_, bool>("cycle")? {
        return Err(GoalError::Refused(format!(
            "Dependency would create a cycle: goal {depends_on_id} already depends on goal {goal_id}"
        )));
    }
    let blocks = dependency_type == "blocks";
    if blocks && row.try_get::<_, bool>("lineage")? {
        return Err(GoalError::Refused(
            "A goal cannot be blocked by its own ancestor or subgoal".into(),
        ));
    }
    let target_unfinished = !matches!(target_status.as_str(), "completed" | "cancelled");
    if blocks && target_unfinished && goal.status == "active" {
        return Err(GoalError::Refused(
            "Cannot add a blocking dependency to an active goal. Pause it first.".into(),
        ));
    }
    tx.execute(
        "INSERT INTO agent.goal_dependencies (goal_id, depends_on_id, dependency_type) VALUES ($1, $2, $3)",
        &[&goal_id, &depends_on_id, &dependency_type],
    )
    .await?;
    let note = Note::new("dependency_added")
        .describe(format!(
            "Depends on goal {depends_on_id} '{target_title}' ({dependency_type})"
        ))
        .data(json!({"depends_on_id": depends_on_id, "dependency_type": dependency_type}));
    record(&tx, goal.subject(), note, actor).await?;
    let fx = Effects {
        reconcile: vec![goal_id],
        ..Effects::default()
    };
    settle(&tx, fx).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the dependency of `goal_id` on `depends_on_id`.
pub async fn remove_dependency(
    pool: &Pool,
    goal_id: i64,
    depends_on_id: i64,
    actor: &Actor,
) -> Result<(), GoalError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DEPENDENCY_LOCK])
        .await?;
    let goal = match Locked::load(&tx, goal_id).await {
        Ok(g) => g,
        Err(GoalError::NotFound(_)) => {
            return Err(GoalError::NotFound("Dependency not found".into()));
        }
        Err(e) => return Err(e),
    };
    let removed = tx
        .query_opt(
            "DELETE FROM agent.goal_dependencies WHERE goal_id = $1 AND depends_on_id = $2 RETURNING dependency_type",
            &[&goal_id, &depends_on_id],
        )
        .await?
        .ok_or_else(|| GoalError::NotFound("Dependency not found".into()))?;
    let kind: String = removed.try_get(0)?;
    let note = Note::new("dependency_removed")
        .describe(format!(
            "No longer depends on goal {depends_on_id} ({kind})"
        ))
        .data(json!({"depends_on_id": depends_on_id, "dependency_type": kind}));
    record(&tx, goal.subject(), note, actor).await?;
    let fx = Effects {
        reconcile: vec![goal_id],
        ..Effects::default()
    };
    settle(&tx, fx).await?;
    tx.commit().await?;
    Ok(())
}
