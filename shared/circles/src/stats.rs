//! Agents' counters (`tasks_completed`, `reviews_done`, `approval_rate`,
//! `average_quality_score`), updated right after a transition commits, each agent in a
//! statement of its own.
//!
//! Why not in the transition's transaction: a verdict touches two agents (author and
//! reviewer), and two verdicts with the roles swapped would lock the same two rows in opposite
//! orders — a deadlock under load. Updated afterwards, no transaction ever holds an agent's row
//! while waiting for anything. The rates and `reviews_done` are recomputed from
//! `review.reviews` (exact whenever they are refreshed); `tasks_completed` is an increment
//! (shared with background tasks), which a crash between the commit and this update would miss.
//! The circle's `/metrics` are computed from the tasks and reviews themselves. The statements
//! are `gathering_agents::counters` (the owner of `agent.agents`).

use gathering_agents::counters;
use gathering_db::Pool;

/// What a committed transition changes in agents' counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Authors of tasks that completed.
    pub completed: Vec<i64>,
    /// Agents whose reviews changed (as author or as reviewer).
    pub reviewed: Vec<i64>,
}

impl AgentStats {
    pub fn merge(&mut self, other: AgentStats) {
        self.completed.extend(other.completed);
        self.reviewed.extend(other.reviewed);
    }

    /// Applies the counters; failures are logged (they are statistics, the transition stands).
    pub async fn apply(self, pool: &Pool) {
        if self.completed.is_empty() && self.reviewed.is_empty() {
            return;
        }
        let result = async {
            let c = pool.get().await?;
            for id in &self.completed {
                counters::task_completed(&c, *id).await?;
            }
            let mut reviewed = self.reviewed.clone();
            reviewed.sort_unstable();
            reviewed.dedup();
            for id in &reviewed {
                counters::refresh_reviews(&c, *id).await?;
            }
            Ok::<_, crate::CircleError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "updating agents' counters failed");
        }
    }
}
