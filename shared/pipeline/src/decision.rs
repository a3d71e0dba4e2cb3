//! The approvals as the API sees them: the pending ones a caller may decide, and deciding one.
//! A decision locks the run and the approval, is refused when the caller is not an approver
//! (403) or the approval is no longer pending or its run is over (409), is recorded with who
//! and when, and wakes the run's job (`gathering_queue::wake_in`): the executor that takes it
//! applies the decision. Any edge can decide; nothing is held in memory.

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_events::publish_in;
use serde_json::{Value, json};

use crate::PipelineError;
use crate::approval::{decided_event, permitted};

fn iso(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

macro_rules! approval_columns {
    () => {
        "a.id, a.run_id, a.pipeline_id, p.name AS pipeline_name, a.node_id, a.message, \
         a.approver_roles, a.approver_user_ids, a.on_timeout, a.context, a.status, a.outcome, \
         a.decided_by, a.decided_at, a.comment, a.data, a.requested_at, a.expires_at, \
         r.status AS run_status"
    };
}

const PENDING_SQL: &str = concat!(
    "SELECT ",
    approval_columns!(),
    " FROM circle.pipeline_approvals a ",
    "JOIN circle.pipeline_runs r ON r.id = a.run_id ",
    "JOIN circle.pipelines p ON p.id = a.pipeline_id ",
    "WHERE a.status = 'pending' AND r.status IN ('pending', 'running', 'waiting_approval') ",
    "AND ($1 = ANY(a.approver_roles) OR $2 = ANY(a.approver_user_ids)) ",
    "ORDER BY a.requested_at, a.id LIMIT $3"
);

const LOCK_SQL: &str = concat!(
    "SELECT ",
    approval_columns!(),
    " FROM circle.pipeline_approvals a ",
    "JOIN circle.pipeline_runs r ON r.id = a.run_id ",
    "JOIN circle.pipelines p ON p.id = a.pipeline_id ",
    "WHERE a.run_id = $1 AND r.pipeline_id = $2 AND a.node_id = $3 ",
    "FOR UPDATE OF a, r"
);

const DECIDE_SQL: &str = "
UPDATE circle.pipeline_approvals SET status = $3, decided_by = $4, decided_at = now(),
    comment = $5, data = $6
WHERE run_id = $1 AND node_id = $2 AND status = 'pending'
RETURNING decided_at";

/// One approval with its pipeline's name and its run's status.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub id: i64,
    pub run_id: i64,
    pub pipeline_id: i64,
    pub pipeline_name: String,
    pub node_id: String,
    pub message: String,
    pub roles: Vec<String>,
    pub user_ids: Vec<String>,
    pub on_timeout: String,
    pub context: Value,
    pub status: String,
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub data: Option<Value>,
    pub requested_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub run_status: String,
}

impl ApprovalRow {
    fn from_row(r: &Row) -> Result<Self, PgError> {
        Ok(Self {
            id: r.try_get("id")?,
            run_id: r.try_get("run_id")?,
            pipeline_id: r.try_get("pipeline_id")?,
            pipeline_name: r.try_get("pipeline_name")?,
            node_id: r.try_get("node_id")?,
            message: r.try_get("message")?,
            roles: r.try_get("approver_roles")?,
            user_ids: r.try_get("approver_user_ids")?,
            on_timeout: r.try_get("on_timeout")?,
            context: r.try_get("context")?,
            status: r.try_get("status")?,
            outcome: r.try_get("outcome")?,
            decided_by: r.try_get("decided_by")?,
            decided_at: r.try_get("decided_at")?,
            comment: r.try_get("comment")?,
            data: r.try_get("data")?,
            requested_at: r.try_get("requested_at")?,
            expires_at: r.try_get("expires_at")?,
            run_status: r.try_get("run_status")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "run_id": self.run_id,
            "pipeline_id": self.pipeline_id,
            "pipeline_name": self.pipeline_name,
            "node_id": self.node_id,
            "message": self.message,
            "approvers": {"roles": self.roles, "user_ids": self.user_ids},
            "on_timeout": self.on_timeout,
            "context": self.context,
            "status": self.status,
            "outcome": self.outcome,
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at),
            "comment": self.comment,
            "data": self.data,
            "requested_at": iso(Some(self.requested_at)),
            "expires_at": iso(self.expires_at),
            "run_status": self.run_status,
        })
    }
}

/// Pending approvals of live runs that the caller (`sub`, `role`) may decide, oldest first.
pub async fn pending_for<C: GenericClient>(
    c: &C,
    sub: &str,
    role: &str,
    limit: i64,
) -> Result<Vec<ApprovalRow>, PipelineError> {
    Ok(c.query(PENDING_SQL, &[&role, &sub, &limit])
        .await?
        .iter()
        .map(ApprovalRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// What a caller decides.
pub struct Decide<'a> {
    pub pipeline_id: i64,
    pub run_id: i64,
    pub node_id: &'a str,
    pub approve: bool,
    pub sub: &'a str,
    pub role: &'a str,
    pub comment: Option<&'a str>,
    pub data: Option<&'a Value>,
}

/// Records a decision and wakes the run; the approval as decided.
pub async fn decide(
    client: &mut gathering_db::Client,
    d: &Decide<'_>,
) -> Result<ApprovalRow, PipelineError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(LOCK_SQL, &[&d.run_id, &d.pipeline_id, &d.node_id])
        .await?
        .ok_or(PipelineError::ApprovalNotFound)?;
    let mut approval = ApprovalRow::from_row(&row)?;
    if !permitted(&approval.roles, &approval.user_ids, d.sub, d.role) {
        return Err(PipelineError::NotApprover);
    }
    if approval.status != "pending" {
        return Err(PipelineError::Conflict(format!(
            "Approval already decided: {} by {} at {}",
            approval.status,
            approval.decided_by.as_deref().unwrap_or("its timeout"),
            iso(approval.decided_at).as_str().unwrap_or("?")
        )));
    }
    if !matches!(
        approval.run_status.as_str(),
        "pending" | "running" | "waiting_approval"
    ) {
        return Err(PipelineError::Conflict(format!(
            "Run is over ('{}'): its approval can no longer be decided",
            approval.run_status
        )));
    }
    let status = if d.approve { "approved" } else { "rejected" };
    let decided = tx
        .query_one(
            DECIDE_SQL,
            &[&d.run_id, &d.node_id, &status, &d.sub, &d.comment, &d.data],
        )
        .await?;
    approval.decided_at = decided.try_get(0)?;
    approval.status = status.to_owned();
    approval.decided_by = Some(d.sub.to_owned());
    approval.comment = d.comment.map(str::to_owned);
    approval.data = d.data.cloned();
    gathering_queue::wake_in(&tx, &crate::store::run_job_key(d.run_id)).await?;
    publish_in(
        &tx,
        &[decided_event(
            d.pipeline_id,
            d.run_id,
            d.node_id,
            status,
            Some(d.sub),
            None,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(approval)
}
