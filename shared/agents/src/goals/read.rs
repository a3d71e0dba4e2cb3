//! Goals as the API shows them: rows of `public.goals_dashboard` (the goal's columns, its place
//! in the tree, its agent's and circle's names, subgoal and dependency counts), lists with
//! counts per status, subtrees, dependency neighbours and the activity log.

use std::collections::HashMap;

use gathering_db::{GenericClient, Pool};
use serde_json::Value;

use super::GoalError;

/// Most nodes a `/tree` answer holds.
const MAX_TREE_NODES: i64 = 2000;

fn values(rows: &[gathering_db::tokio_postgres::Row]) -> Result<Vec<Value>, GoalError> {
    rows.iter()
        .map(|r| r.try_get::<_, Value>(0).map_err(GoalError::from))
        .collect()
}

/// One goal, or `None`.
pub async fn get_in<C: GenericClient>(c: &C, id: i64) -> Result<Option<Value>, GoalError> {
    let row = c
        .query_opt(
            "SELECT to_jsonb(g) FROM public.goals_dashboard g WHERE g.id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| r.try_get::<_, Value>(0).map_err(GoalError::from))
        .transpose()
}

/// One goal; `NotFound("Goal not found")` when there is none.
pub async fn get(pool: &Pool, id: i64) -> Result<Value, GoalError> {
    let client = pool.get().await?;
    get_in(&client, id)
        .await?
        .ok_or_else(GoalError::goal_not_found)
}

/// `GET /goals` filters (validated by the caller).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub agent_id: Option<i64>,
    pub circle_id: Option<i64>,
    pub status: Option<String>,
    pub parent_id: Option<i64>,
    pub root_only: bool,
    pub limit: i64,
    pub offset: i64,
}

/// A page of goals (most urgent first, then newest), the number matching the filters, and
/// the number per status (same filters but the status).
pub async fn list(pool: &Pool, f: &ListFilter) -> Result<(Vec<Value>, i64, Value), GoalError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT to_jsonb(g) FROM public.goals_dashboard g \
             WHERE ($1::int8 IS NULL OR g.agent_id = $1) AND ($2::int8 IS NULL OR g.circle_id = $2) \
               AND ($3::text IS NULL OR g.status::text = $3) AND ($4::int8 IS NULL OR g.parent_id = $4) \
               AND (NOT $5 OR g.parent_id IS NULL) \
             ORDER BY g.priority DESC, g.created_at DESC, g.id DESC LIMIT $6 OFFSET $7",
            &[
                &f.agent_id,
                &f.circle_id,
                &f.status,
                &f.parent_id,
                &f.root_only,
                &f.limit,
                &f.offset,
            ],
        )
        .await?;
    let goals = values(&rows)?;
    let counts = client
        .query(
            "SELECT status::text, count(*) FROM agent.goals \
             WHERE ($1::int8 IS NULL OR agent_id = $1) AND ($2::int8 IS NULL OR circle_id = $2) \
               AND ($3::int8 IS NULL OR parent_id = $3) AND (NOT $4 OR parent_id IS NULL) \
             GROUP BY status",
            &[&f.agent_id, &f.circle_id, &f.parent_id, &f.root_only],
        )
        .await?;
    let mut total = 0;
    let mut by_status = serde_json::Map::new();
    for r in counts {
        let status: String = r.try_get(0)?;
        let n: i64 = r.try_get(1)?;
        if f.status.as_deref().is_none_or(|s| s == status) {
            total += n;
        }
        by_status.insert(status, Value::from(n));
    }
    Ok((goals, total, Value::Object(by_status)))
}

async fn exists<C: GenericClient>(c: &C, id: i64) -> Result<(), GoalError> {
    c.query_opt("SELECT 1 FROM agent.goals WHERE id = $1", &[&id])
        .await?
        .map(|_| ())
        .ok_or_else(GoalError::goal_not_found)
}

/// The direct subgoals of a goal, oldest first.
pub async fn subgoals(pool: &Pool, id: i64) -> Result<Vec<Value>, GoalError> {
    let client = pool.get().await?;
    exists(&client, id).await?;
    let rows = client
        .query(
            "SELECT to_jsonb(g) FROM public.goals_dashboard g WHERE g.parent_id = $1 ORDER BY g.id",
            &[&id],
        )
        .await?;
    values(&rows)
}

/// The goal with `subgoals` nested to any depth (at most `MAX_TREE_NODES` nodes).
pub async fn tree(pool: &Pool, id: i64) -> Result<Value, GoalError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "WITH RECURSIVE t (id, lvl) AS ( \
                 SELECT id, 0 FROM agent.goals WHERE id = $1 \
                 UNION ALL \
                 SELECT g.id, t.lvl + 1 FROM agent.goals g JOIN t ON g.parent_id = t.id WHERE t.lvl < 100) \
             SELECT to_jsonb(d) FROM public.goals_dashboard d \
             WHERE d.id IN (SELECT id FROM t ORDER BY lvl, id LIMIT $2) ORDER BY d.depth, d.id",
            &[&id, &MAX_TREE_NODES],
        )
        .await?;
    let nodes = values(&rows)?;
    if nodes.is_empty() {
        return Err(GoalError::goal_not_found());
    }
    // Children by parent id, in id order; then built bottom-up from the root.
    let mut children: HashMap<i64, Vec<Value>> = HashMap::new();
    let mut root = None;
    for n in nodes {
        let nid = n["id"].as_i64().unwrap_or_default();
        if nid == id {
            root = Some(n);
        } else if let Some(p) = n["parent_id"].as_i64() {
            children.entry(p).or_default().push(n);
        }
    }
    let root = root.ok_or_else(GoalError::goal_not_found)?;
    Ok(attach(root, &mut children, 0))
}

fn attach(mut node: Value, children: &mut HashMap<i64, Vec<Value>>, depth: usize) -> Value {
    let id = node["id"].as_i64().unwrap_or_default();
    let kids = if depth < 100 {
        children
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|k| attach(k, children, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    if let Some(o) = node.as_object_mut() {
        o.insert("subgoals".into(), Value::Array(kids));
    }
    node
}

/// Goals `id` depends on, each with `dependency_type`.
pub async fn dependencies(pool: &Pool, id: i64) -> Result<Vec<Value>, GoalError> {
    let client = pool.get().await?;
    exists(&client, id).await?;
    let rows = client
        .query(
            "SELECT to_jsonb(g) || jsonb_build_object('dependency_type', d.dependency_type) \
             FROM agent.goal_dependencies d JOIN public.goals_dashboard g ON g.id = d.depends_on_id \
             WHERE d.goal_id = $1 ORDER BY d.id",
            &[&id],
        )
        .await?;
    values(&rows)
}

/// Goals that depend on `id`, each with `dependency_type`.
pub async fn dependents(pool: &Pool, id: i64) -> Result<Vec<Value>, GoalError> {
    let client = pool.get().await?;
    exists(&client, id).await?;
    let rows = client
        .query(
            "SELECT to_jsonb(g) || jsonb_build_object('dependency_type', d.dependency_type) \
             FROM agent.goal_dependencies d JOIN public.goals_dashboard g ON g.id = d.goal_id \
             WHERE d.depends_on_id = $1 ORDER BY d.id",
            &[&id],
        )
        .await?;
    values(&rows)
}

/// The activity log of a goal, newest first.
pub async fn activities(
    pool: &Pool,
    id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<Value>, GoalError> {
    let client = pool.get().await?;
    exists(&client, id).await?;
    let rows = client
        .query(
            "SELECT jsonb_build_object('id', a.id, 'goal_id', a.goal_id, 'activity_type', a.activity_type, \
                 'description', a.description, 'old_value', a.old_value, 'new_value', a.new_value, \
                 'actor_type', a.actor_type, 'actor_id', a.actor_id, 'tokens_used', a.tokens_used, \
                 'duration_ms', a.duration_ms, 'created_at', a.created_at) \
             FROM agent.goal_activities a WHERE a.goal_id = $1 \
             ORDER BY a.created_at DESC, a.id DESC LIMIT $2 OFFSET $3",
            &[&id, &limit, &offset],
        )
        .await?;
    values(&rows)
}
