-- Pipeline execution on executors (issue 8): what a run needs to be resumed by any executor,
-- fenced against a stale one, nested as a sub-run, and what circuit breakers share.

-- definition: the nodes, edges and run settings as they were when the run started, so editing
--   the pipeline never changes a run in flight (NULL until an executor first picks the run up:
--   runs created by the scheduler do not carry it).
-- runner: a token of the job attempt executing the run; every executor write checks it, so an
--   executor that lost its lease cannot overwrite the state written by the one that took over.
-- timeout_seconds: the run's own timeout (the pipeline's when the run started).
-- parent_*: a sub-run started by an `execute_pipeline` action; one per parent node attempt.
ALTER TABLE circle.pipeline_runs
    ADD COLUMN definition       jsonb,
    ADD COLUMN runner           text,
    ADD COLUMN timeout_seconds  integer CHECK (timeout_seconds IS NULL OR timeout_seconds > 0),
    ADD COLUMN parent_run_id    bigint REFERENCES circle.pipeline_runs(id) ON DELETE CASCADE,
    ADD COLUMN parent_node_id   text,
    ADD COLUMN parent_attempt   integer,
    ADD COLUMN depth            integer NOT NULL DEFAULT 0 CHECK (depth BETWEEN 0 AND 16);

CREATE UNIQUE INDEX pipeline_runs_parent_attempt_key
    ON circle.pipeline_runs (parent_run_id, parent_node_id, parent_attempt)
    WHERE parent_run_id IS NOT NULL;

-- attempt: the attempt in progress or last made (1-based; retry_count = attempt - 1 once done).
--   An executor that resumes a run re-runs a running node's attempt with the same number, so
--   its idempotency key (run, node, attempt) is the same and the target can de-duplicate.
-- wake_at: when a running node that is not executing continues: a delay's end, a retry's
--   back-off, the next check of a sub-run.
-- child_run_id: the sub-run of an execute_pipeline node's current attempt.
-- error_kind: config | timeout | transient | execution | circuit_open | cancelled.
ALTER TABLE circle.pipeline_node_runs
    ADD COLUMN attempt       integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    ADD COLUMN wake_at       timestamptz,
    ADD COLUMN child_run_id  bigint,
    ADD COLUMN error_kind    text;

-- Circuit breakers, one per node target (an HTTP origin, an agent, a tool, a pipeline), shared
-- by every executor: closed → open after `failure_threshold` failures → half_open (one probe)
-- after the recovery time → closed on success, open again on failure.
CREATE TABLE circle.pipeline_circuits (
    key               text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 300),
    state             text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    failures          integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    opened_at         timestamptz,
    probe_started_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
