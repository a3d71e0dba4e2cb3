//! Reviews: a verdict on one iteration of a task, from the automatic reviewer (a member's
//! model call, see `review_job`) or from a human through approve/reject.
//!
//! A verdict applies only while the task is `in_review` at that iteration (and, for an
//! automatic one, still assigned to that reviewer), and `review.reviews` holds one row per
//! iteration: applying it twice — a retried job, a human and the reviewer at once — records
//! it once. Approval completes the task. A request for changes sends it back to its author
//! with the comments (a new iteration, admitted like new work) until the circle's bound of
//! rounds, when it escalates: `failed` with reason `escalated`, an `audit.escalations` row
//! and a `task.escalated` event a human can act on (reassigning the task starts over).

use gathering_db::GenericClient;
use gathering_events::publish_in;
use serde_json::{Value, json};

use crate::circles::CircleRef;
use crate::error::CircleError;
use crate::stats::AgentStats;
use crate::tasks::{self, TaskRow};
use crate::{Circles, completion, dispatch, events, routing};

/// The verdict an automatic reviewer must return.
pub fn verdict_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["approve", "request_changes"]},
            "comments": {"type": "string", "maxLength": crate::input::MAX_COMMENTS},
            "quality_score": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["verdict", "comments", "quality_score"]
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub approved: bool,
    pub comments: String,
    /// 0..1; `None` for a human verdict without a score.
    pub quality: Option<f64>,
}

/// The first balanced JSON object in `text` (models wrap answers in prose or code fences).
pub fn extract_object(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = None;
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if start.is_some() => in_str = true,
            b'{' => {
                start.get_or_insert(i);
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return start.map(|s| &text[s..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses and validates a model's verdict; the error says what to fix.
pub fn parse_verdict(text: &str, validator: &jsonschema::Validator) -> Result<Verdict, String> {
    let raw = extract_object(text).ok_or("the answer holds no JSON object")?;
    let value: Value =
        serde_json::from_str(raw).map_err(|e| format!("the JSON object does not parse: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} at '{}'", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "the JSON does not match the schema: {}",
            errors.join("; ")
        ));
    }
    Ok(Verdict {
        approved: value["verdict"] == "approve",
        comments: value["comments"].as_str().unwrap_or_default().to_owned(),
        quality: value["quality_score"].as_f64(),
    })
}

/// Who gives the verdict.
#[derive(Debug, Clone)]
pub enum Reviewer {
    /// The member the review job was for.
    Agent(i64),
    /// A person through the API, possibly naming a member agent as the reviewer.
    Human { user: String, agent: Option<i64> },
}

/// What became of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Approved,
    SentBack,
    Escalated,
    /// The task moved on (another verdict, a newer iteration): nothing changed.
    Stale,
}

const REVIEW_INSERT_SQL: &str = "
INSERT INTO review.reviews (task_id, circle_id, project_id, author_id, reviewer_id, reviewer_user_id,
    review_type, status, overall_score, quality_score, summary, feedback, iteration, started_at, completed_at)
VALUES ($1, $2, $3, $4, $5, $6, 'quality', $7::text::public.review_status, $8, $9, $10, $10, $11, now(), now())
ON CONFLICT (task_id, iteration) DO NOTHING
RETURNING id";

/// Applies a verdict to iteration `iteration` of a locked task; the caller applies the
/// returned counters after its commit.
pub async fn apply<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
    iteration: i32,
    reviewer: &Reviewer,
    verdict: &Verdict,
    max_rounds: i32,
) -> Result<(Applied, AgentStats), CircleError> {
    let current = task.status == "in_review" && task.iteration == iteration;
    let expected_reviewer = match reviewer {
        Reviewer::Agent(id) => task.reviewer_agent_id == Some(*id),
        Reviewer::Human { .. } => true,
    };
    let Some(author) = task.assigned_agent_id else {
        return Ok((Applied::Stale, AgentStats::default()));
    };
    if !current || !expected_reviewer {
        return Ok((Applied::Stale, AgentStats::default()));
    }
    let (agent, user) = match reviewer {
        Reviewer::Agent(id) => (Some(*id), None),
        Reviewer::Human { user, agent } => (*agent, Some(user.as_str())),
    };
    let comments: String = verdict
        .comments
        .chars()
        .take(crate::input::MAX_COMMENTS)
        .collect();
    let score = verdict
        .quality
        .map(|q| (q.clamp(0.0, 1.0) * 100.0).round() as i32);
    let status = if verdict.approved {
        "approved"
    } else {
        "changes_requested"
    };
    let inserted = c
        .query_opt(
            REVIEW_INSERT_SQL,
            &[
                &task.id,
                &circle.id,
                &circle.project_id,
                &author,
                &agent,
                &user,
                &status,
                &score,
                &verdict.quality,
                &comments,
                &iteration,
            ],
        )
        .await?;
    if inserted.is_none() {
        return Ok((Applied::Stale, AgentStats::default()));
    }
    let mut stats = AgentStats {
        completed: Vec::new(),
        reviewed: std::iter::once(author).chain(agent).collect(),
    };
    let verdict_event = |kind: &str| {
        events::task(
            kind,
            circle.id,
            &circle.name,
            task.id,
            json!({"agent_id": author, "reviewer_id": agent, "reviewer_user": user, "comments": comments,
                   "quality_score": verdict.quality, "iteration": iteration}),
        )
    };
    if verdict.approved {
        c.execute(
            "UPDATE circle.tasks SET status = 'completed', completed_at = now(), quality_score = $2, \
                 review_comments = $3, status_reason = NULL, job_id = NULL WHERE id = $1",
            &[&task.id, &verdict.quality, &comments],
        )
        .await?;
        publish_in(c, &[verdict_event("task.review_approved")]).await?;
        stats.merge(completion::completed(c, circle, task, verdict.quality).await?);
        return Ok((Applied::Approved, stats));
    }
    let rounds = task.review_rounds + 1;
    if rounds >= max_rounds {
        publish_in(c, &[verdict_event("task.review_rejected")]).await?;
        escalate(c, circle, task, rounds, &comments).await?;
        return Ok((Applied::Escalated, stats));
    }
    c.execute(
        "UPDATE circle.tasks SET status = 'assigned', iteration = iteration + 1, review_rounds = $2, \
             review_comments = $3, quality_score = $4, status_reason = 'changes requested', \
             dispatched = false, runner = NULL, job_id = NULL, assigned_at = now() WHERE id = $1",
        &[&task.id, &rounds, &comments, &verdict.quality],
    )
    .await?;
    publish_in(
        c,
        &[
            verdict_event("task.review_rejected"),
            events::task(
                "task.assigned",
                circle.id,
                &circle.name,
                task.id,
                json!({"agent_id": author, "status": "assigned", "reason": "changes requested",
                       "iteration": iteration + 1, "review_rounds": rounds}),
            ),
        ],
    )
    .await?;
    dispatch::dispatch(c, circle.id).await?;
    Ok((Applied::SentBack, stats))
}

async fn escalate<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
    task: &TaskRow,
    rounds: i32,
    comments: &str,
) -> Result<(), CircleError> {
    c.execute(
        "UPDATE circle.tasks SET status = 'failed', status_reason = 'escalated', review_rounds = $2, \
             review_comments = $3, completed_at = now(), job_id = NULL WHERE id = $1",
        &[&task.id, &rounds, &comments],
    )
    .await?;
    let description = format!(
        "Task {} '{}' was sent back {rounds} time(s) without approval; last comments: {}",
        task.id,
        task.title,
        comments.chars().take(2000).collect::<String>()
    );
    let escalation: i64 = c
        .query_one(
            "INSERT INTO audit.escalations (escalation_type, circle_id, project_id, task_id, agent_id, title, \
                 description, context, severity) \
             VALUES ('review_rounds_exceeded', $1, $2, $3, $4, $5, $6, $7, 'high') RETURNING id",
            &[
                &circle.id,
                &circle.project_id,
                &task.id,
                &task.assigned_agent_id,
                &format!("Task {} escalated after {rounds} review rounds", task.id),
                &description,
                &json!({"circle": circle.name, "iteration": task.iteration}),
            ],
        )
        .await?
        .try_get("id")?;
    publish_in(
        c,
        &[
            events::task(
                "task.escalated",
                circle.id,
                &circle.name,
                task.id,
                json!({"escalation_id": escalation, "review_rounds": rounds, "agent_id": task.assigned_agent_id,
                       "reason": "escalated", "comments": comments}),
            ),
            events::task(
                "task.failed",
                circle.id,
                &circle.name,
                task.id,
                json!({"status": "failed", "reason": "escalated", "agent_id": task.assigned_agent_id}),
            ),
        ],
    )
    .await?;
    crate::conflicts::resolve_for_tasks(c, circle, &[task.id], "task escalated").await?;
    Ok(())
}

/// A human's verdict (`POST …/approve` and `…/reject`). `reviewer_id` names who reviews: a
/// member agent's id, or anything else for a person (the caller is recorded either way). The
/// author never reviews its own work. A review job still running is cancelled.
pub async fn human(
    circles: &Circles,
    name: &str,
    task_id: i64,
    reviewer_id: &str,
    user: &str,
    verdict: &Verdict,
) -> Result<Applied, CircleError> {
    let mut client = circles.pool.get().await?;
    let tx = client.transaction().await?;
    let (circle, task) = tasks::lock_in(&tx, name, task_id).await?;
    if task.status != "in_review" {
        return Err(CircleError::BadRequest(format!(
            "Task must be in review (it is {})",
            task.status
        )));
    }
    let agent = reviewer_id.trim().parse::<i64>().ok();
    if agent.is_some() && agent == task.assigned_agent_id {
        return Err(CircleError::BadRequest(
            "The author of a task cannot review it".into(),
        ));
    }
    let members = routing::candidates(&tx, circle.id).await?;
    let agent = agent.filter(|a| members.iter().any(|m| m.agent_id == *a));
    let reviewer = Reviewer::Human {
        user: user.to_owned(),
        agent,
    };
    let max_rounds = circle.max_rounds(circles.config.max_review_rounds);
    let (applied, stats) = apply(
        &tx,
        &circle,
        &task,
        task.iteration,
        &reviewer,
        verdict,
        max_rounds,
    )
    .await?;
    tx.commit().await?;
    stats.apply(&circles.pool).await;
    if let Some(job) = task.job_id {
        tasks::cancel_job(circles, job).await;
    }
    Ok(applied)
}

/// Gives a reviewer to the circle's tasks that wait in review without one (a member who can
/// review joined, or the reviewer left). The caller holds the circle's lock.
pub async fn assign_waiting_reviews<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
) -> Result<usize, CircleError> {
    let ids: Vec<i64> = c
        .query(
            "SELECT id FROM circle.tasks WHERE circle_id = $1 AND status = 'in_review' \
                 AND reviewer_agent_id IS NULL ORDER BY priority, id LIMIT 200",
            &[&circle.id],
        )
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut assigned = 0;
    for id in ids {
        let Some((_, task)) = tasks::lock(c, id).await? else {
            continue;
        };
        if completion::request_review(c, circle, &task)
            .await?
            .is_some()
        {
            assigned += 1;
        }
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&verdict_schema()).unwrap()
    }

    #[test]
    fn verdicts_parse_from_prose_and_fences() {
        let v = parse_verdict(
            "Here it is:\n```json\n{\"verdict\": \"approve\", \"comments\": \"fine {ok}\", \"quality_score\": 0.8}\n```",
            &validator(),
        )
        .unwrap();
        assert!(v.approved);
        assert_eq!(v.comments, "fine {ok}");
        assert_eq!(v.quality, Some(0.8));
        let v = parse_verdict(
            r#"{"verdict":"request_changes","comments":"add tests","quality_score":0}"#,
            &validator(),
        )
        .unwrap();
        assert!(!v.approved);
    }

    #[test]
    fn invalid_verdicts_say_why() {
        let v = validator();
        assert!(
            parse_verdict("looks good to me", &v)
                .unwrap_err()
                .contains("no JSON")
        );
        assert!(parse_verdict("{\"verdict\": ", &v).is_err());
        let e = parse_verdict(r#"{"verdict":"maybe","comments":"","quality_score":2}"#, &v)
            .unwrap_err();
        assert!(e.contains("schema"), "{e}");
        assert!(parse_verdict(r#"{"verdict":"approve"}"#, &v).is_err());
    }
}
