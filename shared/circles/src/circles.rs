//! Circles and their members (contract §2.5): create, list, detail, start, stop, soft delete,
//! add and remove members, update. Every change and its event commit together; changes that
//! open work (a member joins, the circle starts) route pending tasks, give orphan reviews a
//! reviewer and admit waiting work in the same transaction.

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::error::SqlState;
use gathering_events::publish_in;
use serde_json::{Value, json};

use crate::error::CircleError;
use crate::input::MAX_MEMBERS;
use crate::{Circles, dispatch, events, review, routing};

/// What operations need to know about a circle.
#[derive(Debug, Clone)]
pub struct CircleRef {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub require_review: bool,
    pub auto_route: bool,
    pub project_id: Option<i64>,
    pub max_review_rounds: Option<i32>,
}

impl CircleRef {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Rejections after which a task escalates.
    pub fn max_rounds(&self, default: i32) -> i32 {
        self.max_review_rounds.unwrap_or(default).max(1)
    }
}

const FIND_SQL: &str = "SELECT id, name, status::text AS status, require_review, auto_route, project_id, \
     (review_policy->>'max_rounds')::int4 AS max_rounds FROM circle.circles WHERE name = $1 AND is_active";
const LOCK_SQL: &str = "SELECT id, name, status::text AS status, require_review, auto_route, project_id, \
     (review_policy->>'max_rounds')::int4 AS max_rounds FROM circle.circles WHERE name = $1 AND is_active FOR NO KEY UPDATE";
const LOCK_ID_SQL: &str = "SELECT id, name, status::text AS status, require_review, auto_route, project_id, \
     (review_policy->>'max_rounds')::int4 AS max_rounds FROM circle.circles WHERE id = $1 FOR NO KEY UPDATE";

fn circle_ref(row: &gathering_db::tokio_postgres::Row) -> Result<CircleRef, CircleError> {
    Ok(CircleRef {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        require_review: row.try_get("require_review")?,
        auto_route: row.try_get("auto_route")?,
        project_id: row.try_get("project_id")?,
        max_review_rounds: row.try_get("max_rounds")?,
    })
}

/// A live circle by name.
pub async fn find<C: GenericClient>(c: &C, name: &str) -> Result<CircleRef, CircleError> {
    let row = c
        .query_opt(FIND_SQL, &[&name])
        .await?
        .ok_or_else(|| CircleError::CircleNotFound(name.to_owned()))?;
    circle_ref(&row)
}

/// A live circle by name, locked for the transaction (serialises routing and admission).
pub async fn lock<C: GenericClient>(c: &C, name: &str) -> Result<CircleRef, CircleError> {
    let row = c
        .query_opt(LOCK_SQL, &[&name])
        .await?
        .ok_or_else(|| CircleError::CircleNotFound(name.to_owned()))?;
    circle_ref(&row)
}

/// A circle by id (live or not), locked.
pub async fn lock_id<C: GenericClient>(c: &C, id: i64) -> Result<CircleRef, CircleError> {
    let row = c
        .query_opt(LOCK_ID_SQL, &[&id])
        .await?
        .ok_or_else(|| CircleError::CircleNotFound(id.to_string()))?;
    circle_ref(&row)
}

#[derive(Debug, Clone)]
pub struct NewCircle {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub require_review: bool,
    pub auto_route: bool,
    pub max_concurrent_tasks: i32,
    pub project_id: Option<i64>,
    pub max_review_rounds: Option<i32>,
    pub owner: Option<String>,
}

const CIRCLE_JSON_SQL: &str = "
SELECT jsonb_build_object(
    'id', c.name, 'name', c.name, 'circle_id', c.id, 'status', c.status::text,
    'display_name', c.display_name, 'description', c.description,
    'agent_count', mc.n, 'member_count', mc.n,
    'task_count', tc.total, 'active_tasks', tc.active, 'pending_tasks', tc.pending,
    'completed_tasks', tc.completed, 'failed_tasks', tc.failed,
    'conflicts', (SELECT count(*) FROM circle.conflicts f WHERE f.circle_id = c.id AND f.status = 'open'),
    'require_review', c.require_review, 'auto_route', c.auto_route,
    'max_concurrent_tasks', c.max_concurrent_tasks,
    'max_review_rounds', (c.review_policy->>'max_rounds')::int4,
    'created_at', c.created_at, 'started_at', c.started_at,
    'project_id', c.project_id, 'project_name', p.name) AS circle
FROM circle.circles c
LEFT JOIN project.projects p ON p.id = c.project_id
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM circle.members m WHERE m.circle_id = c.id AND m.is_active) mc ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE t.status IN ('assigned', 'in_progress', 'in_review')) AS active,
           count(*) FILTER (WHERE t.status = 'pending') AS pending,
           count(*) FILTER (WHERE t.status = 'completed') AS completed,
           count(*) FILTER (WHERE t.status = 'failed') AS failed
    FROM circle.tasks t WHERE t.circle_id = c.id) tc ON true
WHERE c.is_active AND ($1::text IS NULL OR c.name = $1)
ORDER BY c.name
LIMIT 1000";

const MEMBERS_JSON_SQL: &str = "
SELECT jsonb_build_object(
    'id', a.id, 'agent_id', a.id, 'name', a.name, 'agent_name', a.name, 'role', m.role::text,
    'provider', pr.name, 'model', mo.model_name,
    'status', CASE WHEN cur.id IS NOT NULL THEN 'busy' WHEN NOT a.is_active THEN 'offline' ELSE 'idle' END,
    'competencies', m.competencies, 'can_review', m.can_review,
    'current_task', CASE WHEN cur.id IS NULL THEN NULL
                         ELSE jsonb_build_object('id', cur.id, 'title', cur.title) END,
    'created_at', a.created_at, 'last_activity', a.last_active_at, 'joined_at', m.joined_at) AS agent
FROM circle.members m
JOIN agent.agents a ON a.id = m.agent_id
LEFT JOIN agent.models mo ON mo.id = a.model_id
LEFT JOIN agent.providers pr ON pr.id = mo.provider_id
LEFT JOIN LATERAL (
    SELECT t.id, t.title FROM circle.tasks t
    WHERE t.circle_id = m.circle_id AND t.assigned_agent_id = a.id AND t.status = 'in_progress'
    ORDER BY t.started_at LIMIT 1) cur ON true
WHERE m.circle_id = $1 AND m.is_active
ORDER BY m.joined_at, a.id";

/// Circles as `GET /circles` lists them.
pub async fn list<C: GenericClient>(c: &C) -> Result<Vec<Value>, CircleError> {
    let none: Option<&str> = None;
    c.query(CIRCLE_JSON_SQL, &[&none])
        .await?
        .iter()
        .map(|r| r.try_get::<_, Value>("circle").map_err(CircleError::decode))
        .collect()
}

/// The active members as the contract's `Agent`s.
pub async fn members<C: GenericClient>(c: &C, circle_id: i64) -> Result<Vec<Value>, CircleError> {
    c.query(MEMBERS_JSON_SQL, &[&circle_id])
        .await?
        .iter()
        .map(|r| r.try_get::<_, Value>("agent").map_err(CircleError::decode))
        .collect()
}

/// `CircleDetail`: the circle, its members and its task counts.
pub async fn detail<C: GenericClient>(c: &C, name: &str) -> Result<Value, CircleError> {
    let row = c
        .query_opt(CIRCLE_JSON_SQL, &[&Some(name)])
        .await?
        .ok_or_else(|| CircleError::CircleNotFound(name.to_owned()))?;
    let mut circle: Value = row.try_get("circle")?;
    let id = circle["circle_id"].as_i64().unwrap_or_default();
    circle["agents"] = Value::from(members(c, id).await?);
    Ok(circle)
}

const INSERT_SQL: &str = "
INSERT INTO circle.circles (name, display_name, description, require_review, auto_route,
    max_concurrent_tasks, project_id, owner_id, review_policy)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
        CASE WHEN $9::int4 IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('max_rounds', $9::int4) END)
RETURNING id";

pub async fn create(circles: &Circles, new: &NewCircle) -> Result<Value, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let inserted = tx
        .query_one(
            INSERT_SQL,
            &[
                &new.name,
                &new.display_name,
                &new.description,
                &new.require_review,
                &new.auto_route,
                &new.max_concurrent_tasks,
                &new.project_id,
                &new.owner,
                &new.max_review_rounds,
            ],
        )
        .await;
    let id: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(CircleError::Exists(format!(
                "Circle '{}' already exists",
                new.name
            )));
        }
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(CircleError::Missing(format!(
                "Project {} not found",
                new.project_id.unwrap_or_default()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    publish_in(
        &tx,
        &[events::circle(
            "circle.created",
            id,
            &new.name,
            json!({"require_review": new.require_review, "auto_route": new.auto_route}),
        )],
    )
    .await?;
    let out = detail(&tx, &new.name).await?;
    tx.commit().await?;
    Ok(out)
}

/// `start` → `started` or `already_running`. Waiting work is admitted.
pub async fn start(circles: &Circles, name: &str) -> Result<&'static str, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    if circle.is_running() {
        return Ok("already_running");
    }
    tx.execute(
        "UPDATE circle.circles SET status = 'running', started_at = now(), stopped_at = NULL WHERE id = $1",
        &[&circle.id],
    )
    .await?;
    publish_in(
        &tx,
        &[events::circle(
            "circle.started",
            circle.id,
            &circle.name,
            json!({}),
        )],
    )
    .await?;
    let running = CircleRef {
        status: "running".into(),
        ..circle
    };
    routing::route_pending(&tx, &running).await?;
    dispatch::dispatch(&tx, running.id).await?;
    tx.commit().await?;
    Ok("started")
}

/// `stop` → `stopped` or `already_stopped`. Running tasks finish; nothing new is admitted
/// and no task can be created until it starts again.
pub async fn stop(circles: &Circles, name: &str) -> Result<&'static str, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    if circle.status == "stopped" {
        return Ok("already_stopped");
    }
    tx.execute(
        "UPDATE circle.circles SET status = 'stopped', stopped_at = now() WHERE id = $1",
        &[&circle.id],
    )
    .await?;
    publish_in(
        &tx,
        &[events::circle(
            "circle.stopped",
            circle.id,
            &circle.name,
            json!({}),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok("stopped")
}

const FAIL_WAITING_SQL: &str = "
UPDATE circle.tasks SET status = 'failed', status_reason = 'circle deleted', completed_at = now(),
    runner = NULL
WHERE circle_id = $1 AND status IN ('pending', 'assigned')
RETURNING id";

/// Stops and soft-deletes the circle (its name can be reused). Tasks not started yet fail
/// with reason `circle deleted`; running ones finish.
pub async fn delete(circles: &Circles, name: &str) -> Result<(), CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    tx.execute(
        "UPDATE circle.circles SET is_active = false, status = 'stopped', stopped_at = now() WHERE id = $1",
        &[&circle.id],
    )
    .await?;
    let failed: Vec<i64> = tx
        .query(FAIL_WAITING_SQL, &[&circle.id])
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut evs = vec![events::circle(
        "circle.deleted",
        circle.id,
        &circle.name,
        json!({}),
    )];
    for t in &failed {
        evs.push(events::task(
            "task.failed",
            circle.id,
            &circle.name,
            *t,
            json!({"status": "failed", "reason": "circle deleted"}),
        ));
    }
    publish_in(&tx, &evs).await?;
    crate::conflicts::resolve_for_tasks(&tx, &circle, &failed, "circle deleted").await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub agent_id: i64,
    pub role: Option<String>,
    pub competencies: Vec<String>,
    pub can_review: Vec<String>,
}

const JOIN_SQL: &str = "
INSERT INTO circle.members AS m (circle_id, agent_id, role, competencies, can_review)
VALUES ($1, $2, COALESCE($3::text::public.agent_role, 'member'), $4, $5)
ON CONFLICT (circle_id, agent_id) DO UPDATE SET is_active = true, left_at = NULL, joined_at = now(),
    role = EXCLUDED.role, competencies = EXCLUDED.competencies, can_review = EXCLUDED.can_review
WHERE NOT m.is_active OR $6
RETURNING m.id";

/// Adds an agent (or brings a former member back). `replace` updates an active member's
/// competencies instead of refusing it (the agents' `circle_join` tool). 409 when already a
/// member otherwise.
pub async fn add_member(
    circles: &Circles,
    name: &str,
    member: &NewMember,
    replace: bool,
) -> Result<(), CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    if tx
        .query_opt(
            "SELECT 1 FROM agent.agents WHERE id = $1",
            &[&member.agent_id],
        )
        .await?
        .is_none()
    {
        return Err(CircleError::AgentNotFound(member.agent_id));
    }
    let count: i64 = tx
        .query_one(
            "SELECT count(*) AS n FROM circle.members WHERE circle_id = $1 AND is_active AND agent_id <> $2",
            &[&circle.id, &member.agent_id],
        )
        .await?
        .try_get("n")?;
    if count >= MAX_MEMBERS {
        return Err(CircleError::BadRequest(format!(
            "A circle has at most {MAX_MEMBERS} members"
        )));
    }
    let joined = tx
        .query_opt(
            JOIN_SQL,
            &[
                &circle.id,
                &member.agent_id,
                &member.role,
                &member.competencies,
                &member.can_review,
                &replace,
            ],
        )
        .await?;
    if joined.is_none() {
        return Err(CircleError::Exists(format!(
            "Agent {} is already a member of circle '{}'",
            member.agent_id, circle.name
        )));
    }
    publish_in(
        &tx,
        &[events::circle(
            "circle.member.added",
            circle.id,
            &circle.name,
            json!({"agent_id": member.agent_id, "competencies": member.competencies, "can_review": member.can_review}),
        )],
    )
    .await?;
    routing::route_pending(&tx, &circle).await?;
    review::assign_waiting_reviews(&tx, &circle).await?;
    dispatch::dispatch(&tx, circle.id).await?;
    tx.commit().await?;
    Ok(())
}

const REROUTE_SQL: &str = "
UPDATE circle.tasks SET status = 'pending', assigned_agent_id = NULL, dispatched = false,
    runner = NULL, iteration = iteration + 1, status_reason = 'member left'
WHERE circle_id = $1 AND assigned_agent_id = $2 AND status = 'assigned'
RETURNING id";

/// Removes a member. Its tasks not started yet are routed again (their old jobs find a newer
/// iteration and do nothing); its reviews go to another member (or wait for a human).
pub async fn remove_member(
    circles: &Circles,
    name: &str,
    agent_id: i64,
) -> Result<(), CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    let n = tx
        .execute(
            "UPDATE circle.members SET is_active = false, left_at = now() \
             WHERE circle_id = $1 AND agent_id = $2 AND is_active",
            &[&circle.id, &agent_id],
        )
        .await?;
    if n == 0 {
        return Err(CircleError::Missing(format!(
            "Agent {agent_id} is not a member of circle '{}'",
            circle.name
        )));
    }
    let rerouted = tx.query(REROUTE_SQL, &[&circle.id, &agent_id]).await?;
    tx.execute(
        "UPDATE circle.tasks SET reviewer_agent_id = NULL, job_id = NULL \
         WHERE circle_id = $1 AND reviewer_agent_id = $2 AND status = 'in_review'",
        &[&circle.id, &agent_id],
    )
    .await?;
    publish_in(
        &tx,
        &[events::circle(
            "circle.member.removed",
            circle.id,
            &circle.name,
            json!({"agent_id": agent_id, "rerouted_tasks": rerouted.len()}),
        )],
    )
    .await?;
    routing::route_pending(&tx, &circle).await?;
    review::assign_waiting_reviews(&tx, &circle).await?;
    dispatch::dispatch(&tx, circle.id).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct CirclePatch {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub require_review: Option<bool>,
    pub auto_route: Option<bool>,
    pub project_id: Option<i64>,
    pub max_concurrent_tasks: Option<i32>,
}

const UPDATE_SQL: &str = "
UPDATE circle.circles SET display_name = COALESCE($2, display_name),
    description = COALESCE($3, description), require_review = COALESCE($4, require_review),
    auto_route = COALESCE($5, auto_route), project_id = COALESCE($6, project_id),
    max_concurrent_tasks = COALESCE($7, max_concurrent_tasks)
WHERE id = $1";

/// Changes a circle's settings (the agents' `circle_update` tool). Turning routing on routes
/// pending tasks; a larger slot count admits waiting work.
pub async fn update(
    circles: &Circles,
    name: &str,
    patch: &CirclePatch,
) -> Result<Value, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = lock(&tx, name).await?;
    let updated = tx
        .execute(
            UPDATE_SQL,
            &[
                &circle.id,
                &patch.display_name,
                &patch.description,
                &patch.require_review,
                &patch.auto_route,
                &patch.project_id,
                &patch.max_concurrent_tasks,
            ],
        )
        .await;
    match updated {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(CircleError::Missing(format!(
                "Project {} not found",
                patch.project_id.unwrap_or_default()
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let fresh = lock_id(&tx, circle.id).await?;
    publish_in(
        &tx,
        &[events::circle(
            "circle.updated",
            fresh.id,
            &fresh.name,
            json!({}),
        )],
    )
    .await?;
    routing::route_pending(&tx, &fresh).await?;
    dispatch::dispatch(&tx, fresh.id).await?;
    let out = detail(&tx, &fresh.name).await?;
    tx.commit().await?;
    Ok(out)
}
