//! Workspace activities (`project.workspace_activities`): what agents and users did in a
//! project (files, commits, test runs, …). Persisted, so every edge lists the same ones and a
//! restart loses none (upstream kept them in one process's memory); each new one is also a
//! `workspace.activity` event (topics `workspace`, `workspace:{project_id}`) in the same
//! transaction, so dashboards see it live on `/ws`.

use gathering_db::tokio_postgres::Row;
use gathering_db::tokio_postgres::error::SqlState;
use gathering_events::{NewEvent, publish_in};
use serde_json::{Value, json};

use crate::error::ApiError;

/// The contract's activity types.
pub const TYPES: &[&str] = &[
    "file_created",
    "file_edited",
    "file_deleted",
    "commit",
    "test_run",
    "build",
    "discussion",
    "command_executed",
];

/// Largest `details` object accepted (bytes of JSON).
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

pub struct NewActivity<'a> {
    pub project_id: i64,
    pub agent_id: Option<i64>,
    pub activity_type: &'a str,
    pub details: Value,
    /// The caller's token subject.
    pub created_by: Option<&'a str>,
}

fn decode(row: &Row) -> Result<Value, ApiError> {
    let at: chrono::DateTime<chrono::Utc> = row.try_get("created_at")?;
    Ok(json!({
        "id": row.try_get::<_, i64>("id")?,
        "project_id": row.try_get::<_, i64>("project_id")?,
        "agent_id": row.try_get::<_, Option<i64>>("agent_id")?,
        "type": row.try_get::<_, String>("activity_type")?,
        "details": row.try_get::<_, Value>("details")?,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }))
}

/// Records an activity and announces it; returns it in the contract's shape.
pub async fn record(pool: &gathering_db::Pool, a: NewActivity<'_>) -> Result<Value, ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let created_by = a
        .created_by
        .map(|s| s.chars().take(100).collect::<String>());
    let row = tx
        .query_one(
            "INSERT INTO project.workspace_activities (project_id, agent_id, activity_type, details, created_by) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, project_id, agent_id, activity_type, details, created_at",
            &[&a.project_id, &a.agent_id, &a.activity_type, &a.details, &created_by],
        )
        .await
        .map_err(|e| match e.code() {
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => match a.agent_id {
                Some(id) => ApiError::BadRequest(format!("Agent {id} not found")),
                None => ApiError::NotFound(format!("Project {} not found", a.project_id)),
            },
            _ => ApiError::from(e),
        })?;
    let activity = decode(&row)?;
    let event = NewEvent::new("workspace.activity", activity.clone())
        .topic("workspace")
        .topic(format!("workspace:{}", a.project_id))
        .source("edge");
    publish_in(&tx, &[event])
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(activity)
}

/// Newest first.
pub async fn list(
    client: &gathering_db::Client,
    project_id: i64,
    limit: i64,
    agent_id: Option<i64>,
    activity_type: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let rows = client
        .query(
            "SELECT id, project_id, agent_id, activity_type, details, created_at \
             FROM project.workspace_activities \
             WHERE project_id = $1 AND ($2::bigint IS NULL OR agent_id = $2) \
               AND ($3::text IS NULL OR activity_type = $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            &[&project_id, &agent_id, &activity_type, &limit],
        )
        .await?;
    rows.iter().map(decode).collect()
}

/// `{total, by_type{}, agents[]}` in one query.
pub async fn stats(client: &gathering_db::Client, project_id: i64) -> Result<Value, ApiError> {
    let row = client
        .query_one(
            "SELECT count(*) AS total, \
                    COALESCE((SELECT jsonb_object_agg(activity_type, n) FROM \
                        (SELECT activity_type, count(*) AS n FROM project.workspace_activities \
                         WHERE project_id = $1 GROUP BY activity_type) t), '{}'::jsonb) AS by_type, \
                    COALESCE((SELECT array_agg(DISTINCT agent_id ORDER BY agent_id) \
                        FROM project.workspace_activities \
                        WHERE project_id = $1 AND agent_id IS NOT NULL), '{}') AS agents \
             FROM project.workspace_activities WHERE project_id = $1",
            &[&project_id],
        )
        .await?;
    Ok(json!({
        "total": row.try_get::<_, i64>("total")?,
        "by_type": row.try_get::<_, Value>("by_type")?,
        "agents": row.try_get::<_, Vec<i64>>("agents")?,
    }))
}
