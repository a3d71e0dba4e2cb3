//! Sub-runs: the run of another pipeline that an `execute_pipeline` node's attempt starts
//! (contract §5). There is one per parent run, node and attempt (a unique index), so an
//! attempt resumed on another executor finds the sub-run it started instead of starting a
//! second one. The runs are this crate's table; the executor's node calls these, inside its
//! own transaction, then adds the sub-run's node rows and job ([`crate::store`]).

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;
use serde_json::Value;

use crate::model::Definition;
use crate::record::PipelineRow;

const INSERT_SQL: &str = "
INSERT INTO circle.pipeline_runs
    (pipeline_id, status, trigger_data, definition, timeout_seconds, parent_run_id, parent_node_id,
     parent_attempt, depth)
VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (parent_run_id, parent_node_id, parent_attempt) WHERE parent_run_id IS NOT NULL
DO NOTHING
RETURNING id";

const FIND_SQL: &str = "
SELECT id FROM circle.pipeline_runs
WHERE parent_run_id = $1 AND parent_node_id = $2 AND parent_attempt = $3";

/// The sub-run a node's attempt starts: the pipeline it runs (validated by the caller) and
/// where it comes from.
pub struct NewSubRun<'a> {
    pub pipeline: &'a PipelineRow,
    pub definition: &'a Definition,
    pub trigger_data: &'a Value,
    pub parent_run_id: i64,
    pub parent_node_id: &'a str,
    pub parent_attempt: i32,
    /// The sub-run's own depth (its parent's plus one).
    pub depth: i32,
}

/// Creates the pending sub-run with the pipeline's definition snapshot; its id, or `None` when
/// this attempt already started one ([`find`] gives it).
pub async fn insert<C: GenericClient>(c: &C, new: &NewSubRun<'_>) -> Result<Option<i64>, PgError> {
    let settings = &new.pipeline.settings;
    let row = c
        .query_opt(
            INSERT_SQL,
            &[
                &new.pipeline.id,
                new.trigger_data,
                &new.definition.snapshot(settings),
                &settings.timeout_seconds,
                &new.parent_run_id,
                &new.parent_node_id,
                &new.parent_attempt,
                &new.depth,
            ],
        )
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// The id of the sub-run that the attempt `parent_attempt` of node `parent_node_id` started.
pub async fn find<C: GenericClient>(
    c: &C,
    parent_run_id: i64,
    parent_node_id: &str,
    parent_attempt: i32,
) -> Result<i64, PgError> {
    c.query_one(
        FIND_SQL,
        &[&parent_run_id, &parent_node_id, &parent_attempt],
    )
    .await?
    .try_get(0)
}
