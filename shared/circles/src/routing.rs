//! Who does a task and who reviews it.
//!
//! **Assignee** (auto_route): among the circle's active members whose competencies cover at
//! least one required competency (every member when none is required — the earlier
//! implementation never found one then), the best coverage wins, then the lowest workload
//! (tasks assigned or in progress, in every circle), then the best approval rate, then the
//! lowest id (so routing is deterministic). Nobody qualifies: the task stays `pending` with
//! that reason and is routed when a qualified member joins.
//!
//! **Reviewer**: an active member other than the author whose `can_review` holds `all`, one
//! of the task's review kinds (default `quality`) or one of its required competencies; the
//! fewest open reviews wins, then the lowest workload, then the lowest id. The author never
//! reviews its own work. Nobody qualifies: the review waits for a human (approve/reject) or
//! for a member who can review to join.
//!
//! The choice is a pure function of the candidates (tested without a database); the caller
//! holds the circle's row lock, so concurrent choices see each other's assignments.

use gathering_db::GenericClient;
use gathering_events::publish_in;
use serde_json::json;

use crate::CircleError;
use crate::circles::CircleRef;
use crate::events;

pub const NO_MEMBER: &str = "no qualified member";
pub const AWAITING_ASSIGNMENT: &str = "awaiting assignment";
pub const NO_REVIEWER: &str = "awaiting review: no member can review it";

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub agent_id: i64,
    pub competencies: Vec<String>,
    pub can_review: Vec<String>,
    /// Tasks assigned or in progress, in every circle.
    pub workload: i64,
    /// Reviews waiting for it.
    pub reviews: i64,
    pub approval_rate: f64,
}

/// Share of `required` that `competencies` cover (1 when nothing is required).
pub fn coverage(required: &[String], competencies: &[String]) -> f64 {
    if required.is_empty() {
        return 1.0;
    }
    let hit = required
        .iter()
        .filter(|r| competencies.iter().any(|c| c.eq_ignore_ascii_case(r)))
        .count();
    hit as f64 / required.len() as f64
}

pub fn choose_assignee<'a>(
    required: &[String],
    candidates: &'a [Candidate],
) -> Option<&'a Candidate> {
    candidates
        .iter()
        .map(|c| (coverage(required, &c.competencies), c))
        .filter(|(cov, _)| *cov > 0.0)
        .max_by(|(ca, a), (cb, b)| {
            ca.total_cmp(cb)
                .then(b.workload.cmp(&a.workload))
                .then(a.approval_rate.total_cmp(&b.approval_rate))
                .then(b.agent_id.cmp(&a.agent_id))
        })
        .map(|(_, c)| c)
}

/// Whether `c` may review work of these kinds (review types and required competencies).
pub fn can_review(c: &Candidate, kinds: &[String]) -> bool {
    c.can_review
        .iter()
        .any(|k| k.eq_ignore_ascii_case("all") || kinds.iter().any(|x| x.eq_ignore_ascii_case(k)))
}

pub fn choose_reviewer<'a>(
    kinds: &[String],
    author: Option<i64>,
    candidates: &'a [Candidate],
) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| Some(c.agent_id) != author && can_review(c, kinds))
        .min_by(|a, b| {
            a.reviews
                .cmp(&b.reviews)
                .then(a.workload.cmp(&b.workload))
                .then(a.agent_id.cmp(&b.agent_id))
        })
}

const CANDIDATES_SQL: &str = "
SELECT m.agent_id, m.competencies, m.can_review, a.approval_rate,
       (SELECT count(*) FROM circle.tasks t
        WHERE t.assigned_agent_id = m.agent_id AND t.status IN ('assigned', 'in_progress')) AS workload,
       (SELECT count(*) FROM circle.tasks t
        WHERE t.reviewer_agent_id = m.agent_id AND t.status = 'in_review') AS reviews
FROM circle.members m JOIN agent.agents a ON a.id = m.agent_id
WHERE m.circle_id = $1 AND m.is_active AND a.is_active
ORDER BY m.agent_id";

/// The circle's active members with their current load.
pub async fn candidates<C: GenericClient>(
    c: &C,
    circle_id: i64,
) -> Result<Vec<Candidate>, CircleError> {
    let rows = c.query(CANDIDATES_SQL, &[&circle_id]).await?;
    rows.iter()
        .map(|r| {
            Ok(Candidate {
                agent_id: r.try_get("agent_id")?,
                competencies: r.try_get("competencies")?,
                can_review: r.try_get("can_review")?,
                workload: r.try_get("workload")?,
                reviews: r.try_get("reviews")?,
                approval_rate: r.try_get("approval_rate")?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()
        .map_err(CircleError::decode)
}

/// The review kinds of a task: its review types and its required competencies.
pub fn review_kinds(review_types: &[String], required: &[String]) -> Vec<String> {
    let mut kinds: Vec<String> = review_types.iter().map(|s| s.to_lowercase()).collect();
    for r in required {
        let r = r.to_lowercase();
        if !kinds.contains(&r) {
            kinds.push(r);
        }
    }
    kinds
}

const PENDING_SQL: &str = "
SELECT id, required_competencies FROM circle.tasks
WHERE circle_id = $1 AND status = 'pending' AND assigned_agent_id IS NULL
ORDER BY priority, id LIMIT 500 FOR NO KEY UPDATE";

const ASSIGN_MANY_SQL: &str = "
UPDATE circle.tasks t SET status = 'assigned', assigned_agent_id = a.agent, assigned_at = now(),
    status_reason = NULL, dispatched = false
FROM unnest($1::int8[], $2::int8[]) AS a(task, agent)
WHERE t.id = a.task AND t.status = 'pending'";

/// Routes the circle's pending tasks to members who now qualify (a member joined, came back,
/// or changed competencies). The caller holds the circle's lock and dispatches afterwards.
pub async fn route_pending<C: GenericClient>(
    c: &C,
    circle: &CircleRef,
) -> Result<usize, CircleError> {
    if !circle.auto_route {
        return Ok(0);
    }
    let pending = c.query(PENDING_SQL, &[&circle.id]).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut pool = candidates(c, circle.id).await?;
    let (mut tasks, mut agents) = (Vec::new(), Vec::new());
    for row in &pending {
        let task: i64 = row.try_get("id")?;
        let required: Vec<String> = row.try_get("required_competencies")?;
        let Some(chosen) = choose_assignee(&required, &pool).map(|c| c.agent_id) else {
            continue;
        };
        if let Some(c) = pool.iter_mut().find(|c| c.agent_id == chosen) {
            c.workload += 1;
        }
        tasks.push(task);
        agents.push(chosen);
    }
    if tasks.is_empty() {
        return Ok(0);
    }
    c.execute(ASSIGN_MANY_SQL, &[&tasks, &agents]).await?;
    let events: Vec<_> = tasks
        .iter()
        .zip(&agents)
        .map(|(t, a)| {
            events::task(
                "task.assigned",
                circle.id,
                &circle.name,
                *t,
                json!({"agent_id": a, "status": "assigned", "routed": true}),
            )
        })
        .collect();
    publish_in(c, &events).await?;
    Ok(tasks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, comps: &[&str], workload: i64, approval: f64) -> Candidate {
        Candidate {
            agent_id: id,
            competencies: comps.iter().map(|s| s.to_string()).collect(),
            can_review: Vec::new(),
            workload,
            reviews: 0,
            approval_rate: approval,
        }
    }

    fn req(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn best_coverage_then_workload_then_approval() {
        let c = vec![
            cand(1, &["rust"], 0, 0.9),
            cand(2, &["rust", "sql"], 3, 0.1),
            cand(3, &["python"], 0, 1.0),
        ];
        assert_eq!(
            choose_assignee(&req(&["rust", "sql"]), &c)
                .unwrap()
                .agent_id,
            2
        );
        let c = vec![cand(1, &["rust"], 2, 0.9), cand(2, &["Rust"], 1, 0.1)];
        assert_eq!(
            choose_assignee(&req(&["rust"]), &c).unwrap().agent_id,
            2,
            "workload"
        );
        let c = vec![cand(1, &["rust"], 1, 0.5), cand(2, &["rust"], 1, 0.8)];
        assert_eq!(
            choose_assignee(&req(&["rust"]), &c).unwrap().agent_id,
            2,
            "approval"
        );
        let c = vec![cand(2, &["rust"], 1, 0.5), cand(1, &["rust"], 1, 0.5)];
        assert_eq!(
            choose_assignee(&req(&["rust"]), &c).unwrap().agent_id,
            1,
            "lowest id"
        );
        assert!(
            choose_assignee(&req(&["go"]), &c).is_none(),
            "nobody qualifies"
        );
        assert_eq!(
            choose_assignee(&[], &c).unwrap().agent_id,
            1,
            "no requirement: everyone qualifies"
        );
    }

    #[test]
    fn reviewer_is_never_the_author() {
        let mut a = cand(1, &[], 0, 0.0);
        a.can_review = vec!["all".into()];
        let mut b = cand(2, &[], 5, 0.0);
        b.can_review = vec!["quality".into()];
        let mut c = cand(3, &[], 0, 0.0);
        c.can_review = vec!["security".into()];
        let pool = vec![a, b, c];
        let kinds = review_kinds(&["quality".into()], &[]);
        assert_eq!(choose_reviewer(&kinds, Some(2), &pool).unwrap().agent_id, 1);
        assert_eq!(choose_reviewer(&kinds, Some(1), &pool).unwrap().agent_id, 2);
        let kinds = review_kinds(&["quality".into()], &["security".into()]);
        assert_eq!(choose_reviewer(&kinds, Some(1), &pool).unwrap().agent_id, 3);
        assert!(choose_reviewer(&["docs".into()], Some(1), &pool[1..]).is_none());
    }
}
