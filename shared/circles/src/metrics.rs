//! `GET /circles/{name}/metrics`: computed from the persisted tasks and reviews of the circle
//! (two queries), so every edge answers the same.

use serde_json::{Value, json};

use crate::error::CircleError;
use crate::{Circles, circles};

const TOTALS_SQL: &str = "
SELECT count(*) AS total,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status IN ('assigned', 'in_progress', 'in_review')) AS active,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM circle.tasks WHERE circle_id = $1";

/// Per active member: tasks completed and failed in this circle, current workload (assigned
/// or in progress here), approval rate of its reviewed work here, and the mean review score
/// (0..100) it got here.
const AGENTS_SQL: &str = "
SELECT jsonb_build_object(
    'agent_id', a.id, 'agent_name', a.name,
    'tasks_completed', COALESCE(t.completed, 0), 'tasks_failed', COALESCE(t.failed, 0),
    'current_workload', COALESCE(t.workload, 0),
    'approval_rate', COALESCE(r.rate, 0), 'average_quality_score', COALESCE(r.quality, 0),
    'reviews_done', COALESCE(d.done, 0)) AS agent
FROM circle.members m
JOIN agent.agents a ON a.id = m.agent_id
LEFT JOIN (
    SELECT assigned_agent_id AS agent,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status IN ('assigned', 'in_progress')) AS workload
    FROM circle.tasks WHERE circle_id = $1 AND assigned_agent_id IS NOT NULL
    GROUP BY assigned_agent_id) t ON t.agent = a.id
LEFT JOIN (
    SELECT author_id AS agent, avg((status = 'approved')::int)::float8 AS rate,
           avg(overall_score)::float8 AS quality
    FROM review.reviews WHERE circle_id = $1 GROUP BY author_id) r ON r.agent = a.id
LEFT JOIN (
    SELECT reviewer_id AS agent, count(*) AS done
    FROM review.reviews WHERE circle_id = $1 AND reviewer_id IS NOT NULL GROUP BY reviewer_id) d
    ON d.agent = a.id
WHERE m.circle_id = $1 AND m.is_active
ORDER BY a.id";

pub async fn metrics(circles: &Circles, name: &str) -> Result<Value, CircleError> {
    let c = circles.pool.get().await?;
    let circle = circles::find(&c, name).await?;
    let totals = c.query_one(TOTALS_SQL, &[&circle.id]).await?;
    let agents = c
        .query(AGENTS_SQL, &[&circle.id])
        .await?
        .iter()
        .map(|r| r.try_get::<_, Value>("agent").map_err(CircleError::decode))
        .collect::<Result<Vec<_>, _>>()?;
    let n = |k: &str| totals.try_get::<_, i64>(k).map_err(CircleError::decode);
    Ok(json!({
        "circle": circle.name,
        "agents": agents,
        "total_tasks": n("total")?,
        "pending_tasks": n("pending")?,
        "active_tasks": n("active")?,
        "completed_tasks": n("completed")?,
        "failed_tasks": n("failed")?,
    }))
}
