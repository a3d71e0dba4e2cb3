//! Approval nodes: a run that reaches one waits, holding no worker, until a permitted person
//! approves or rejects it (from any edge), or its timeout decides (`on_timeout`).
//!
//! Config: `message` (may hold `{{…}}` references), `approvers: {roles: [...], user_ids:
//! [...]}` (at least one; a caller may decide when their role or their user id is listed),
//! `timeout_seconds` (optional; the run's own timeout still bounds the whole run) and
//! `on_timeout`: `reject` (the default: a failure of the node, which follows its failure
//! edges and handlers), `approve`, or `fail` (fails the run whatever its failure edges).
//!
//! The decision lives in `circle.pipeline_approvals` (one row per run and node): the executor
//! creates it when the node is reached, the API decides it (`decide`), the executor expires
//! it. The row is the arbiter: whoever moves it out of `pending` first decided.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_events::{NewEvent, publish_in};
use serde_json::{Map, Value, json};

use crate::PipelineError;
use crate::model::Node;

/// Roles a token may carry.
pub const ROLES: [&str; 2] = ["admin", "user"];
/// Longest approval wait a node may ask for.
pub const MAX_TIMEOUT_SECONDS: f64 = 30.0 * 86400.0;
pub const MAX_MESSAGE_CHARS: usize = 4000;
const MAX_APPROVERS: usize = 100;

/// Event of a run reaching an approval node (topics as every pipeline event).
pub const NODE_WAITING: &str = "pipeline_node.waiting_approval";
/// Event of a decision (by a person or by the timeout).
pub const DECIDED: &str = "pipeline_approval.decided";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    Reject,
    Approve,
    Fail,
}

impl OnTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Reject => "reject",
            OnTimeout::Approve => "approve",
            OnTimeout::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<OnTimeout> {
        Some(match s {
            "reject" => OnTimeout::Reject,
            "approve" => OnTimeout::Approve,
            "fail" => OnTimeout::Fail,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalConfig {
    pub message: String,
    pub roles: Vec<String>,
    pub user_ids: Vec<String>,
    pub timeout: Option<Duration>,
    pub on_timeout: OnTimeout,
}

fn strings(
    v: Option<&Value>,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_APPROVERS => items
            .iter()
            .map(|i| match i {
                Value::String(s) if check(s) => Ok(s.clone()),
                Value::Number(n) if check(&n.to_string()) => Ok(n.to_string()),
                other => Err(format!("approvers.{what} has an invalid entry {other}")),
            })
            .collect(),
        Some(_) => Err(format!(
            "approvers.{what} must be a list of at most {MAX_APPROVERS} entries"
        )),
    }
}

impl ApprovalConfig {
    /// Reads an approval node's config (the message unresolved: references resolve at run time).
    pub fn of(node: &Node) -> Result<ApprovalConfig, String> {
        Self::from_config(&node.config)
    }

    pub fn from_config(c: &Map<String, Value>) -> Result<ApprovalConfig, String> {
        let message = match c.get("message") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(m)) if m.chars().count() <= MAX_MESSAGE_CHARS => m.clone(),
            Some(_) => {
                return Err(format!(
                    "message must be a string of at most {MAX_MESSAGE_CHARS} characters"
                ));
            }
        };
        let approvers = match c.get("approvers") {
            Some(Value::Object(a)) => a,
            _ => return Err("approvers must be an object with roles and/or user_ids".into()),
        };
        if let Some(k) = approvers
            .keys()
            .find(|k| !["roles", "user_ids"].contains(&k.as_str()))
        {
            return Err(format!("unknown approvers key '{k}'"));
        }
        let roles = strings(approvers.get("roles"), "roles", |r| ROLES.contains(&r))?;
        let user_ids = strings(approvers.get("user_ids"), "user_ids", |u| {
            !u.is_empty() && u.len() <= 200
        })?;
        if roles.is_empty() && user_ids.is_empty() {
            return Err("approvers must name at least one role or user id".into());
        }
        let timeout = match c.get("timeout_seconds").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_TIMEOUT_SECONDS)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!(
                            "timeout_seconds must be a number > 0 and at most {MAX_TIMEOUT_SECONDS}"
                        )
                    })?,
            ),
        };
        let on_timeout = match c.get("on_timeout") {
            None | Some(Value::Null) => OnTimeout::Reject,
            Some(Value::String(s)) => {
                OnTimeout::parse(s).ok_or("on_timeout must be one of reject, approve, fail")?
            }
            Some(_) => return Err("on_timeout must be one of reject, approve, fail".into()),
        };
        Ok(ApprovalConfig {
            message,
            roles,
            user_ids,
            timeout,
            on_timeout,
        })
    }
}

/// Whether a caller (`sub`, `role`) may decide an approval with these approvers.
pub fn permitted(roles: &[String], user_ids: &[String], sub: &str, role: &str) -> bool {
    roles.iter().any(|r| r == role) || user_ids.iter().any(|u| u == sub)
}

/// A decided approval as the executor applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub node_id: String,
    /// approved | rejected | timed_out
    pub status: String,
    /// For a timeout: approve | reject | fail.
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub data: Option<Value>,
}

impl Decision {
    fn from_row(r: &Row) -> Result<Self, PgError> {
        Ok(Self {
            node_id: r.try_get("node_id")?,
            status: r.try_get("status")?,
            outcome: r.try_get("outcome")?,
            decided_by: r.try_get("decided_by")?,
            decided_at: r.try_get("decided_at")?,
            comment: r.try_get("comment")?,
            data: r.try_get("data")?,
        })
    }

    /// approve, reject or fail.
    pub fn effect(&self) -> &str {
        match self.status.as_str() {
            "approved" => "approve",
            "rejected" => "reject",
            _ => self.outcome.as_deref().unwrap_or("reject"),
        }
    }

    /// The node's output when the decision approves: the decision's `data` merged under the
    /// decision's own fields.
    pub fn output(&self) -> Value {
        let mut out = match &self.data {
            Some(Value::Object(d)) => d.clone(),
            _ => Map::new(),
        };
        out.insert("approved".into(), Value::Bool(true));
        out.insert("decision".into(), json!(self.status));
        out.insert("decided_by".into(), json!(self.decided_by));
        out.insert(
            "decided_at".into(),
            json!(self.decided_at.map(|t| t.to_rfc3339())),
        );
        out.insert("comment".into(), json!(self.comment));
        out.insert("timed_out".into(), json!(self.status == "timed_out"));
        Value::Object(out)
    }

    /// The node's error when the decision rejects or fails.
    pub fn error(&self) -> String {
        if self.status == "timed_out" {
            return format!(
                "Approval of node '{}' timed out (on_timeout: {})",
                self.node_id,
                self.effect()
            );
        }
        let who = self.decided_by.as_deref().unwrap_or("unknown");
        match self.comment.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => format!("Approval of node '{}' rejected by {who}: {c}", self.node_id),
            None => format!("Approval of node '{}' rejected by {who}", self.node_id),
        }
    }
}

/// An approval the executor creates when a run reaches the node.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub node_id: String,
    pub message: String,
    pub config: ApprovalConfig,
    pub context: Value,
    pub expires_at: Option<DateTime<Utc>>,
}

const CREATE_SQL: &str = "
INSERT INTO circle.pipeline_approvals
    (run_id, pipeline_id, node_id, message, approver_roles, approver_user_ids, on_timeout,
     context, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (run_id, node_id) DO NOTHING";

const EXPIRE_SQL: &str = "
UPDATE circle.pipeline_approvals SET status = 'timed_out', outcome = on_timeout,
    decided_at = now()
WHERE run_id = $1 AND node_id = ANY($2) AND status = 'pending' AND expires_at <= $3
RETURNING pipeline_id, node_id, outcome";

const DECISIONS_SQL: &str = "
SELECT node_id, status, outcome, decided_by, decided_at, comment, data
FROM circle.pipeline_approvals
WHERE run_id = $1 AND node_id = ANY($2) AND status <> 'pending'";

/// Creates the approval rows of nodes just reached, with their events (executor, inside its
/// fenced transaction).
pub async fn create_in<C: GenericClient>(
    c: &C,
    run_id: i64,
    pipeline_id: i64,
    approvals: &[NewApproval],
) -> Result<(), PipelineError> {
    for a in approvals {
        c.execute(
            CREATE_SQL,
            &[
                &run_id,
                &pipeline_id,
                &a.node_id,
                &a.message,
                &a.config.roles,
                &a.config.user_ids,
                &a.config.on_timeout.as_str(),
                &a.context,
                &a.expires_at,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Times out the approvals of `node_ids` whose expiry is at or before `now` (the executor's
/// clock, which also computed the expiry), with their events.
pub async fn expire<C: GenericClient>(
    c: &C,
    run_id: i64,
    node_ids: &[&str],
    now: DateTime<Utc>,
) -> Result<(), PipelineError> {
    let rows = c.query(EXPIRE_SQL, &[&run_id, &node_ids, &now]).await?;
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let pipeline_id: i64 = r.try_get(0)?;
        let node_id: String = r.try_get(1)?;
        let outcome: Option<String> = r.try_get(2)?;
        events.push(decided_event(
            pipeline_id,
            run_id,
            &node_id,
            "timed_out",
            None,
            outcome.as_deref(),
        ));
    }
    publish_in(c, &events).await?;
    Ok(())
}

/// The decided approvals among `node_ids`.
pub async fn decisions<C: GenericClient>(
    c: &C,
    run_id: i64,
    node_ids: &[&str],
) -> Result<Vec<Decision>, PipelineError> {
    Ok(c.query(DECISIONS_SQL, &[&run_id, &node_ids])
        .await?
        .iter()
        .map(Decision::from_row)
        .collect::<Result<_, _>>()?)
}

pub fn decided_event(
    pipeline_id: i64,
    run_id: i64,
    node_id: &str,
    status: &str,
    decided_by: Option<&str>,
    outcome: Option<&str>,
) -> NewEvent {
    NewEvent::new(
        DECIDED,
        json!({
            "pipeline_id": pipeline_id,
            "run_id": run_id,
            "node_id": node_id,
            "status": status,
            "decided_by": decided_by,
            "outcome": outcome,
        }),
    )
    .topic("pipelines")
    .topic(format!("pipelines:{pipeline_id}"))
    .topic(format!("pipeline_runs:{run_id}"))
    .source("pipelines")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> Result<ApprovalConfig, String> {
        ApprovalConfig::from_config(v.as_object().unwrap())
    }

    #[test]
    fn config_is_checked() {
        let c = cfg(
            json!({"message": "ok?", "approvers": {"roles": ["admin"], "user_ids": ["u1", 7]},
                           "timeout_seconds": 2.5, "on_timeout": "approve"}),
        )
        .unwrap();
        assert_eq!(c.user_ids, vec!["u1", "7"]);
        assert_eq!(c.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(c.on_timeout, OnTimeout::Approve);
        assert_eq!(
            cfg(json!({"approvers": {"roles": ["user"]}}))
                .unwrap()
                .on_timeout,
            OnTimeout::Reject
        );
        for bad in [
            json!({}),
            json!({"approvers": {}}),
            json!({"approvers": {"roles": ["boss"]}}),
            json!({"approvers": {"roles": ["admin"], "groups": []}}),
            json!({"approvers": {"user_ids": [""]}}),
            json!({"approvers": {"roles": ["admin"]}, "timeout_seconds": 0}),
            json!({"approvers": {"roles": ["admin"]}, "on_timeout": "ignore"}),
            json!({"approvers": {"roles": ["admin"]}, "message": 3}),
        ] {
            assert!(cfg(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_and_outputs() {
        let roles = vec!["admin".to_owned()];
        let users = vec!["u7".to_owned()];
        assert!(permitted(&roles, &users, "x", "admin"));
        assert!(permitted(&roles, &users, "u7", "user"));
        assert!(!permitted(&roles, &users, "u8", "user"));
        let d = Decision {
            node_id: "ok".into(),
            status: "approved".into(),
            outcome: None,
            decided_by: Some("u7".into()),
            decided_at: None,
            comment: Some("fine".into()),
            data: Some(json!({"budget": 5, "approved": false})),
        };
        let out = d.output();
        assert_eq!(out["budget"], 5);
        assert_eq!(out["approved"], true, "data cannot override the decision");
        assert_eq!(d.effect(), "approve");
        let t = Decision {
            status: "timed_out".into(),
            outcome: Some("fail".into()),
            ..d
        };
        assert_eq!(t.effect(), "fail");
        assert_eq!(
            t.error(),
            "Approval of node 'ok' timed out (on_timeout: fail)"
        );
    }
}
