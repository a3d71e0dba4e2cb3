-- Pipelines (issue 21): human approval nodes and retrying a failed run from where it failed.

-- waiting_approval: every node left to do waits for a person; the run's job is snoozed until
--   the earliest approval timeout (or the run's own timeout) and woken by a decision.
-- retry_of: the run this one retries; its completed node outputs were reused.
ALTER TABLE circle.pipeline_runs
    DROP CONSTRAINT pipeline_runs_status_check,
    ADD CONSTRAINT pipeline_runs_status_check CHECK (status IN
        ('pending', 'running', 'waiting_approval', 'completed', 'failed', 'cancelled', 'timeout')),
    ADD COLUMN retry_of bigint REFERENCES circle.pipeline_runs(id) ON DELETE SET NULL;

CREATE INDEX pipeline_runs_retry_of_idx ON circle.pipeline_runs (retry_of)
    WHERE retry_of IS NOT NULL;
DROP INDEX circle.pipeline_runs_live_idx;
CREATE INDEX pipeline_runs_live_idx ON circle.pipeline_runs (status)
    WHERE status IN ('pending', 'running', 'waiting_approval');

-- reused: a retried run took this node's output from the run it retries, without executing it.
ALTER TABLE circle.pipeline_node_runs
    DROP CONSTRAINT pipeline_node_runs_status_check,
    ADD CONSTRAINT pipeline_node_runs_status_check CHECK (status IN
        ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled', 'reused'));

-- One approval per approval node per run: created by the executor when the node is reached,
-- decided once (by a permitted person through the API, or by its timeout in the executor).
-- The row is the record of the decision: who, when, comment, data.
CREATE TABLE circle.pipeline_approvals (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id             bigint NOT NULL REFERENCES circle.pipeline_runs(id) ON DELETE CASCADE,
    pipeline_id        bigint NOT NULL REFERENCES circle.pipelines(id) ON DELETE CASCADE,
    node_id            text NOT NULL,
    message            text NOT NULL DEFAULT '' CHECK (char_length(message) <= 4000),
    approver_roles     text[] NOT NULL DEFAULT '{}',
    approver_user_ids  text[] NOT NULL DEFAULT '{}',
    on_timeout         text NOT NULL DEFAULT 'reject' CHECK (on_timeout IN ('reject', 'approve', 'fail')),
    context            jsonb NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out')),
    -- For a timeout: what on_timeout decided (approve, reject or fail).
    outcome            text CHECK (outcome IN ('approve', 'reject', 'fail')),
    decided_by         text,
    decided_at         timestamptz,
    comment            text CHECK (char_length(comment) <= 4000),
    data               jsonb,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    CONSTRAINT pipeline_approvals_run_node_key UNIQUE (run_id, node_id)
);
CREATE INDEX pipeline_approvals_pending_idx ON circle.pipeline_approvals (requested_at)
    WHERE status = 'pending';

-- A scheduled run follows its pipeline run's status; the scheduled runs' enum has no
-- waiting_approval: a run waiting for a person is `paused` there.
CREATE OR REPLACE FUNCTION circle.scheduled_run_follows_pipeline() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM circle.follow_scheduled_run('pipeline', NEW.id,
        (CASE WHEN NEW.status = 'waiting_approval' THEN 'paused' ELSE NEW.status END)
            ::public.background_task_status,
        NEW.started_at, NEW.completed_at, NULL, NEW.error_message, NULL);
    RETURN NULL;
END;
$$;
