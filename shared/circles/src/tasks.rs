//! Circle tasks: creation (routing, declared resources, admission), the contract's `Task`
//! view, listing, a result submitted through the API, and a human (re)assignment.
//!
//! Locks: a transition of one task locks that task's row only (its circle is read), so tasks
//! of a circle move in parallel; changes to a circle and its membership lock the circle's row
//! (task creation too, so routing sees each assignment); admission takes the circle's
//! dispatch lock last (see `dispatch`). Whoever holds a circle's row may wait for task rows,
//! but nobody holding a task row waits for a circle's row, and the dispatch lock's holder
//! waits for nothing: no two transactions can wait on each other in a cycle. Row locks are
//! `FOR NO KEY UPDATE`, which foreign-key checks (`FOR KEY SHARE` on the circle and agent rows
//! when a task row is written twice in a transaction) never wait for.

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Row;
use gathering_events::publish_in;
use serde_json::{Value, json};

use crate::circles::{self, CircleRef};
use crate::error::CircleError;
use crate::input::{self, MAX_OPEN_TASKS};
use crate::{Circles, completion, conflicts, dispatch, events, routing};

/// A task as transitions need it.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: i64,
    pub circle_id: i64,
    pub status: String,
    pub title: String,
    pub description: String,
    pub required: Vec<String>,
    pub review_types: Vec<String>,
    pub resources: Vec<String>,
    pub files_modified: Vec<String>,
    pub assigned_agent_id: Option<i64>,
    pub reviewer_agent_id: Option<i64>,
    pub iteration: i32,
    pub review_rounds: i32,
    pub requires_review: bool,
    pub result: Option<String>,
    pub review_comments: Option<String>,
    pub runner: Option<String>,
    pub job_id: Option<i64>,
}

/// A task locked for its transition, with its circle (read, not locked).
macro_rules! locked_task {
    () => {
        "SELECT t.id, t.circle_id, t.status, t.title, COALESCE(t.description, '') AS description,
                t.required_competencies, t.review_types, t.resources, t.files_modified,
                t.assigned_agent_id, t.reviewer_agent_id, t.iteration, t.review_rounds,
                t.requires_review, t.result, t.review_comments, t.runner, t.job_id,
                c.name, c.status::text AS circle_status, c.require_review, c.auto_route, c.project_id,
                (c.review_policy->>'max_rounds')::int4 AS max_rounds
         FROM circle.tasks t JOIN circle.circles c ON c.id = t.circle_id "
    };
}

const LOCK_SQL: &str = concat!(locked_task!(), "WHERE t.id = $1 FOR NO KEY UPDATE OF t");
const LOCK_IN_SQL: &str = concat!(
    locked_task!(),
    "WHERE t.id = $1 AND c.name = $2 AND c.is_active FOR NO KEY UPDATE OF t"
);

fn locked(r: &Row) -> Result<(CircleRef, TaskRow), CircleError> {
    let circle = CircleRef {
        id: r.try_get("circle_id")?,
        name: r.try_get("name")?,
        status: r.try_get("circle_status")?,
        require_review: r.try_get("require_review")?,
        auto_route: r.try_get("auto_route")?,
        project_id: r.try_get("project_id")?,
        max_review_rounds: r.try_get("max_rounds")?,
    };
    Ok((circle, task_row(r)?))
}

fn task_row(r: &Row) -> Result<TaskRow, CircleError> {
    Ok(TaskRow {
        id: r.try_get("id")?,
        circle_id: r.try_get("circle_id")?,
        status: r.try_get("status")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        required: r.try_get("required_competencies")?,
        review_types: r.try_get("review_types")?,
        resources: r.try_get("resources")?,
        files_modified: r.try_get("files_modified")?,
        assigned_agent_id: r.try_get("assigned_agent_id")?,
        reviewer_agent_id: r.try_get("reviewer_agent_id")?,
        iteration: r.try_get("iteration")?,
        review_rounds: r.try_get("review_rounds")?,
        requires_review: r.try_get("requires_review")?,
        result: r.try_get("result")?,
        review_comments: r.try_get("review_comments")?,
        runner: r.try_get("runner")?,
        job_id: r.try_get("job_id")?,
    })
}

const TASK_READ_SQL: &str = "
SELECT t.id, t.circle_id, t.status, t.title, COALESCE(t.description, '') AS description,
       t.required_competencies, t.review_types, t.resources, t.files_modified, t.assigned_agent_id,
       t.reviewer_agent_id, t.iteration, t.review_rounds, t.requires_review, t.result, t.review_comments,
       t.runner, t.job_id, c.name AS circle_name, c.project_id
FROM circle.tasks t JOIN circle.circles c ON c.id = t.circle_id WHERE t.id = $1";

/// A task without locking it, with its circle's name and project (job handlers read before
/// their long model calls, then lock to write).
pub async fn read<C: GenericClient>(
    c: &C,
    task_id: i64,
) -> Result<Option<(String, Option<i64>, TaskRow)>, CircleError> {
    let Some(row) = c.query_opt(TASK_READ_SQL, &[&task_id]).await? else {
        return Ok(None);
    };
    Ok(Some((
        row.try_get("circle_name")?,
        row.try_get("project_id")?,
        task_row(&row)?,
    )))
}

/// Locks a task of the live circle `name`; 404 when either is missing.
pub async fn lock_in<C: GenericClient>(
    c: &C,
    name: &str,
    task_id: i64,
) -> Result<(CircleRef, TaskRow), CircleError> {
    match c.query_opt(LOCK_IN_SQL, &[&task_id, &name]).await? {
        Some(row) => locked(&row),
        None => {
            circles::find(c, name).await?;
            Err(CircleError::TaskNotFound(task_id))
        }
    }
}

/// Locks a task by id alone (job handlers); `None` when it is gone.
pub async fn lock<C: GenericClient>(
    c: &C,
    task_id: i64,
) -> Result<Option<(CircleRef, TaskRow)>, CircleError> {
    match c.query_opt(LOCK_SQL, &[&task_id]).await? {
        Some(row) => Ok(Some(locked(&row)?)),
        None => Ok(None),
    }
}

macro_rules! task_json {
    () => {
        "SELECT jsonb_build_object(
            'id', t.id, 'title', t.title, 'description', COALESCE(t.description, ''),
            'status', t.status, 'priority', t.priority,
            'assigned_agent_id', t.assigned_agent_id, 'assigned_agent_name', aa.name,
            'reviewer_id', t.reviewer_agent_id, 'reviewer_name', ra.name,
            'created_at', t.created_at, 'started_at', t.started_at,
            'completed_at', t.completed_at, 'result', t.result,
            'required_competencies', t.required_competencies, 'resources', t.resources,
            'files_modified', t.files_modified, 'iteration', t.iteration,
            'review_rounds', t.review_rounds, 'status_reason', t.status_reason,
            'quality_score', t.quality_score, 'review_comments', t.review_comments,
            'circle', c.name, 'circle_id', c.id) AS task
         FROM circle.tasks t
         JOIN circle.circles c ON c.id = t.circle_id
         LEFT JOIN agent.agents aa ON aa.id = t.assigned_agent_id
         LEFT JOIN agent.agents ra ON ra.id = t.reviewer_agent_id "
    };
}

const ONE_SQL: &str = concat!(task_json!(), "WHERE t.id = $1 AND t.circle_id = $2");
const LIST_SQL: &str = concat!(
    task_json!(),
    "WHERE t.circle_id = $1 AND ($2::text IS NULL OR t.status = $2) ORDER BY t.id LIMIT $3"
);

/// The contract's `Task`.
pub async fn view<C: GenericClient>(
    c: &C,
    circle_id: i64,
    task_id: i64,
) -> Result<Value, CircleError> {
    let row = c
        .query_opt(ONE_SQL, &[&task_id, &circle_id])
        .await?
        .ok_or(CircleError::TaskNotFound(task_id))?;
    Ok(row.try_get("task")?)
}

pub async fn get(circles: &Circles, name: &str, task_id: i64) -> Result<Value, CircleError> {
    let c = circles.pool.get().await?;
    let circle = circles::find(&c, name).await?;
    view(&c, circle.id, task_id).await
}

/// Tasks of a circle (optionally of one status) and how many match.
pub async fn list(
    circles: &Circles,
    name: &str,
    status: Option<&str>,
    limit: i64,
) -> Result<(Vec<Value>, i64), CircleError> {
    let c = circles.pool.get().await?;
    let circle = circles::find(&c, name).await?;
    let tasks = c
        .query(LIST_SQL, &[&circle.id, &status, &limit])
        .await?
        .iter()
        .map(|r| r.try_get::<_, Value>("task").map_err(CircleError::decode))
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = c
        .query_one(
            "SELECT count(*) AS n FROM circle.tasks WHERE circle_id = $1 AND ($2::text IS NULL OR status = $2)",
            &[&circle.id, &status],
        )
        .await?
        .try_get("n")?;
    Ok((tasks, total))
}

#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub required_competencies: Vec<String>,
    pub priority: i16,
    /// Explicit assignment (must be an active member).
    pub assigned_agent_id: Option<i64>,
    /// Files or resources the task will touch.
    pub resources: Vec<String>,
    pub created_by_user: Option<String>,
    pub created_by_agent: Option<i64>,
}

const INSERT_SQL: &str = "
INSERT INTO circle.tasks (circle_id, project_id, title, description, priority, status,
    required_competencies, requires_review, resources, assigned_agent_id, assigned_at,
    status_reason, created_by_user_id, created_by_agent_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $10::int8 IS NULL THEN NULL ELSE now() END,
        $11, $12, $13)
RETURNING id";

/// Creates a task in a running circle: routed (or explicitly assigned), checked for
/// conflicts with the circle's active tasks, and admitted when a slot is free.
pub async fn create(circles: &Circles, name: &str, new: &NewTask) -> Result<Value, CircleError> {
    let resources = input::paths(&new.resources, input::MAX_LIST)
        .map_err(|m| CircleError::invalid("resources", m))?;
    let required = input::labels(&new.required_competencies)
        .map_err(|m| CircleError::invalid("required_competencies", m))?;
    let new = &NewTask {
        resources,
        required_competencies: required,
        priority: new.priority.clamp(1, 10),
        ..new.clone()
    };
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let circle = circles::lock(&tx, name).await?;
    if !circle.is_running() {
        return Err(CircleError::BadRequest(
            "Circle must be running to create tasks".into(),
        ));
    }
    let open: i64 = tx
        .query_one(
            "SELECT count(*) AS n FROM circle.tasks WHERE circle_id = $1 AND status NOT IN ('completed', 'failed')",
            &[&circle.id],
        )
        .await?
        .try_get("n")?;
    if open >= MAX_OPEN_TASKS {
        return Err(CircleError::Limit(format!(
            "Circle '{}' has {MAX_OPEN_TASKS} unfinished tasks: wait for some to finish",
            circle.name
        )));
    }
    let candidates = routing::candidates(&tx, circle.id).await?;
    let (assignee, reason) = match new.assigned_agent_id {
        Some(id) if candidates.iter().any(|c| c.agent_id == id) => (Some(id), None),
        Some(id) => {
            return Err(CircleError::BadRequest(format!(
                "Agent {id} is not an active member of circle '{}'",
                circle.name
            )));
        }
        None if circle.auto_route => {
            match routing::choose_assignee(&new.required_competencies, &candidates) {
                Some(c) => (Some(c.agent_id), None),
                None => (None, Some(routing::NO_MEMBER)),
            }
        }
        None => (None, Some(routing::AWAITING_ASSIGNMENT)),
    };
    let status = if assignee.is_some() {
        "assigned"
    } else {
        "pending"
    };
    let id: i64 = tx
        .query_one(
            INSERT_SQL,
            &[
                &circle.id,
                &circle.project_id,
                &new.title,
                &new.description,
                &new.priority,
                &status,
                &new.required_competencies,
                &circle.require_review,
                &new.resources,
                &assignee,
                &reason,
                &new.created_by_user,
                &new.created_by_agent,
            ],
        )
        .await?
        .try_get("id")?;
    let mut evs = vec![events::task(
        "task.created",
        circle.id,
        &circle.name,
        id,
        json!({"title": new.title, "priority": new.priority, "status": status, "status_reason": reason}),
    )];
    if let Some(agent) = assignee {
        evs.push(events::task(
            "task.assigned",
            circle.id,
            &circle.name,
            id,
            json!({"agent_id": agent, "status": "assigned", "routed": new.assigned_agent_id.is_none()}),
        ));
    }
    publish_in(&tx, &evs).await?;
    conflicts::detect(&tx, &circle, id, &new.resources, false).await?;
    dispatch::dispatch(&tx, circle.id).await?;
    let out = view(&tx, circle.id, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// A result submitted through the API for an assigned or running task (`POST …/submit`):
/// the same path as an executor's result, so review, conflicts and admission follow. A work
/// job still running for the task is cancelled (its late result would be refused anyway).
pub async fn submit(
    circles: &Circles,
    name: &str,
    task_id: i64,
    result: &str,
    files: &[String],
) -> Result<Value, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (circle, task) = lock_in(&tx, name, task_id).await?;
    if !matches!(task.status.as_str(), "assigned" | "in_progress") {
        return Err(CircleError::BadRequest(format!(
            "Task must be assigned or in progress to submit (it is {})",
            task.status
        )));
    }
    let live_job = task.job_id;
    let stats = completion::finish_work(&tx, &circle, &task, result, files).await?;
    let out = view(&tx, circle.id, task_id).await?;
    tx.commit().await?;
    stats.apply(&circles.pool).await;
    if let Some(job) = live_job {
        cancel_job(circles, job).await;
    }
    Ok(out)
}

/// Cancels a task's job after its work was decided elsewhere; a failure only costs a
/// wasted run (whose result is refused).
pub(crate) async fn cancel_job(circles: &Circles, job: i64) {
    if let Err(e) = circles.queue.cancel(job).await {
        tracing::warn!(error = %e, job, "cancelling a circle job failed");
    }
}

/// A human (re)assigns a pending, assigned or failed task to a member: a fresh iteration whose
/// review rounds start again.
pub async fn assign(
    circles: &Circles,
    name: &str,
    task_id: i64,
    agent_id: i64,
) -> Result<Value, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (circle, task) = lock_in(&tx, name, task_id).await?;
    if !matches!(task.status.as_str(), "pending" | "assigned" | "failed") {
        return Err(CircleError::BadRequest(format!(
            "Only a pending, assigned or failed task can be assigned (it is {})",
            task.status
        )));
    }
    let members = routing::candidates(&tx, circle.id).await?;
    if !members.iter().any(|m| m.agent_id == agent_id) {
        return Err(CircleError::BadRequest(format!(
            "Agent {agent_id} is not an active member of circle '{}'",
            circle.name
        )));
    }
    tx.execute(
        "UPDATE circle.tasks SET status = 'assigned', assigned_agent_id = $2, assigned_at = now(), \
             iteration = iteration + 1, review_rounds = 0, dispatched = false, runner = NULL, \
             reviewer_agent_id = NULL, status_reason = NULL, completed_at = NULL, job_id = NULL \
         WHERE id = $1",
        &[&task_id, &agent_id],
    )
    .await?;
    publish_in(
        &tx,
        &[events::task(
            "task.assigned",
            circle.id,
            &circle.name,
            task_id,
            json!({"agent_id": agent_id, "status": "assigned", "routed": false, "previous": task.status}),
        )],
    )
    .await?;
    dispatch::dispatch(&tx, circle.id).await?;
    let out = view(&tx, circle.id, task_id).await?;
    tx.commit().await?;
    if let Some(job) = task.job_id {
        cancel_job(circles, job).await;
    }
    Ok(out)
}
