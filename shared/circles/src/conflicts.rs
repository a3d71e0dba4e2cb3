//! Conflicts: two active tasks of a circle that declare (`resources`) or touch
//! (`files_modified`) the same file or resource. Each pair and resource is recorded once while
//! open (a unique index), with a `task.conflict.detected` event; when one of the tasks
//! finishes, the conflict is resolved with that resolution and a `task.conflict.resolved`
//! event, and a human may resolve one with their own words.

use gathering_db::GenericClient;
use gathering_events::{NewEvent, publish_in};
use serde_json::{Value, json};

use crate::circles::{self, CircleRef};
use crate::error::CircleError;
use crate::{Circles, events};

const OVERLAP_SQL: &str = "
SELECT t.id, t.assigned_agent_id, t.resources, t.files_modified
FROM circle.tasks t
WHERE t.circle_id = $1 AND t.id <> $2 AND t.status NOT IN ('completed', 'failed')
  AND (t.resources && $3 OR t.files_modified && $3)
ORDER BY t.id
LIMIT 200";

const INSERT_SQL: &str = "
INSERT INTO circle.conflicts (circle_id, conflict_type, agent_ids, task_ids, file_paths, resource, description)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (circle_id, resource, task_ids) WHERE status = 'open' DO NOTHING
RETURNING id";

/// Looks like a file path rather than a named resource.
fn is_path(resource: &str) -> bool {
    resource.contains('/') || resource.contains('.')
}

/// Records the conflicts of task `task_id` over `resources` (declared when `touched` is false,
/// modified otherwise) with the circle's other active tasks.
pub async fn detect<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task_id: i64,
    resources: &[String],
    touched: bool,
) -> Result<usize, CircleError> {
    if resources.is_empty() {
        return Ok(0);
    }
    let rows = c
        .query(OVERLAP_SQL, &[&circle.id, &task_id, &resources])
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let me: Option<i64> = c
        .query_opt(
            "SELECT assigned_agent_id FROM circle.tasks WHERE id = $1",
            &[&task_id],
        )
        .await?
        .map(|r| r.try_get("assigned_agent_id"))
        .transpose()?
        .flatten();
    let mut evs: Vec<NewEvent> = Vec::new();
    for row in &rows {
        let other: i64 = row.try_get("id")?;
        let other_agent: Option<i64> = row.try_get("assigned_agent_id")?;
        let mut theirs: Vec<String> = row.try_get("resources")?;
        theirs.extend(row.try_get::<_, Vec<String>>("files_modified")?);
        let mut tasks = vec![task_id, other];
        tasks.sort_unstable();
        let mut agents: Vec<i64> = [me, other_agent].into_iter().flatten().collect();
        agents.sort_unstable();
        agents.dedup();
        for resource in resources.iter().filter(|r| theirs.contains(r)) {
            let kind = if is_path(resource) {
                "file_collision"
            } else {
                "resource"
            };
            let files: Vec<&str> = if is_path(resource) {
                vec![resource.as_str()]
            } else {
                Vec::new()
            };
            let description = format!(
                "Tasks {} and {} both {} '{resource}'",
                tasks[0],
                tasks[1],
                if touched { "touch" } else { "declare" }
            );
            let Some(row) = c
                .query_opt(
                    INSERT_SQL,
                    &[
                        &circle.id,
                        &kind,
                        &agents,
                        &tasks,
                        &files,
                        &resource,
                        &description,
                    ],
                )
                .await?
            else {
                continue; // already recorded and open
            };
            let id: i64 = row.try_get("id")?;
            evs.push(events::task(
                "task.conflict.detected",
                circle.id,
                &circle.name,
                task_id,
                json!({"conflict_id": id, "type": kind, "resource": resource, "tasks": tasks,
                       "agents": agents, "description": description}),
            ));
        }
    }
    publish_in(c, &evs).await?;
    Ok(evs.len())
}

/// Rows are locked in id order first: transactions resolving overlapping sets of conflicts
/// never wait on each other in a cycle.
const RESOLVE_TASKS_SQL: &str = "
WITH l AS (
    SELECT id FROM circle.conflicts
    WHERE circle_id = $1 AND status = 'open' AND task_ids && $2
    ORDER BY id FOR NO KEY UPDATE
)
UPDATE circle.conflicts f SET status = 'resolved', resolution = $3, resolved_at = now()
FROM l WHERE f.id = l.id AND f.status = 'open'
RETURNING f.id, f.resource";

/// Resolves the open conflicts of finished tasks.
pub async fn resolve_for_tasks<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task_ids: &[i64],
    why: &str,
) -> Result<(), CircleError> {
    if task_ids.is_empty() {
        return Ok(());
    }
    let ids = task_ids.to_vec();
    let rows = c
        .query(RESOLVE_TASKS_SQL, &[&circle.id, &ids, &why])
        .await?;
    let mut evs = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let resource: Option<String> = r.try_get("resource")?;
        evs.push(events::tasks(
            "task.conflict.resolved",
            circle.id,
            &circle.name,
            json!({"conflict_id": id, "resource": resource, "resolution": why}),
        ));
    }
    publish_in(c, &evs).await?;
    Ok(())
}

const LIST_SQL: &str = "
SELECT jsonb_build_object(
    'id', id, 'type', conflict_type, 'resource', resource, 'agents', agent_ids,
    'tasks', task_ids, 'files', file_paths, 'description', description,
    'detected_at', created_at, 'resolved', status = 'resolved', 'resolution', resolution,
    'resolved_at', resolved_at, 'resolved_by', resolved_by_user_id) AS conflict
FROM circle.conflicts
WHERE circle_id = $1 AND ($2::bool IS NULL OR (status = 'resolved') = $2)
ORDER BY created_at DESC, id DESC
LIMIT 500";

/// `GET /circles/{name}/conflicts`, newest first.
pub async fn list(
    circles: &Circles,
    name: &str,
    resolved: Option<bool>,
) -> Result<Vec<Value>, CircleError> {
    let c = circles.pool.get().await?;
    let circle = circles::find(&c, name).await?;
    c.query(LIST_SQL, &[&circle.id, &resolved])
        .await?
        .iter()
        .map(|r| {
            r.try_get::<_, Value>("conflict")
                .map_err(CircleError::decode)
        })
        .collect()
}

/// A human resolves an open conflict.
pub async fn resolve(
    circles: &Circles,
    name: &str,
    conflict_id: i64,
    resolution: &str,
    by: &str,
) -> Result<Value, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = circles::lock(&tx, name).await?;
    let row = tx
        .query_opt(
            "UPDATE circle.conflicts SET status = 'resolved', resolution = $3, resolved_at = now(), \
                 resolved_by_user_id = $4 \
             WHERE id = $1 AND circle_id = $2 AND status = 'open' RETURNING id",
            &[&conflict_id, &circle.id, &resolution, &by],
        )
        .await?;
    if row.is_none() {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM circle.conflicts WHERE id = $1 AND circle_id = $2",
                &[&conflict_id, &circle.id],
            )
            .await?
            .is_some();
        return Err(if exists {
            CircleError::BadRequest(format!("Conflict {conflict_id} is already resolved"))
        } else {
            CircleError::ConflictNotFound(conflict_id)
        });
    }
    publish_in(
        &tx,
        &[events::tasks(
            "task.conflict.resolved",
            circle.id,
            &circle.name,
            json!({"conflict_id": conflict_id, "resolution": resolution, "resolved_by": by}),
        )],
    )
    .await?;
    let out: Value = tx
        .query_one(
            "SELECT jsonb_build_object('id', id, 'type', conflict_type, 'resource', resource, \
                 'agents', agent_ids, 'tasks', task_ids, 'detected_at', created_at, 'resolved', true, \
                 'resolution', resolution, 'resolved_at', resolved_at) AS conflict \
             FROM circle.conflicts WHERE id = $1",
            &[&conflict_id],
        )
        .await?
        .try_get("conflict")?;
    tx.commit().await?;
    Ok(out)
}
