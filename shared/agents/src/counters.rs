//! Agents' work counters (`tasks_completed`, `reviews_done`, `approval_rate`,
//! `average_quality_score`). This crate owns `agent.agents`; background tasks (here) and
//! circles' tasks and reviews (`gathering-circles`) both count through these two statements.

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;

const COMPLETED_SQL: &str =
    "UPDATE agent.agents SET tasks_completed = tasks_completed + 1 WHERE id = $1";

/// Recomputed from `review.reviews`, so they are exact whenever they are refreshed.
const REVIEWS_SQL: &str = "
UPDATE agent.agents a SET
    approval_rate = COALESCE((SELECT avg((status = 'approved')::int)::float8
                              FROM review.reviews WHERE author_id = $1), 0),
    average_quality_score = COALESCE((SELECT avg(overall_score)::float8
                                      FROM review.reviews WHERE author_id = $1), 0),
    reviews_done = (SELECT count(*) FROM review.reviews WHERE reviewer_id = $1)
WHERE a.id = $1";

/// Counts one completed task for `agent_id`.
pub async fn task_completed<C: GenericClient>(c: &C, agent_id: i64) -> Result<(), PgError> {
    c.execute(COMPLETED_SQL, &[&agent_id]).await.map(drop)
}

/// Recomputes the agent's review figures (as author and as reviewer).
pub async fn refresh_reviews<C: GenericClient>(c: &C, agent_id: i64) -> Result<(), PgError> {
    c.execute(REVIEWS_SQL, &[&agent_id]).await.map(drop)
}
