-- The agent runtime's coordination state.
--
-- One agent handles one message at a time across every edge: a chat takes a lease on the
-- agent row (owner + expiry, renewed while it runs, released at the end; a crashed edge's
-- lease simply expires).
ALTER TABLE agent.agents
    ADD COLUMN processing_by     text,
    ADD COLUMN processing_until  timestamptz;

-- A background task runs as a queue job; pause and cancel stop that job wherever it runs.
ALTER TABLE circle.background_tasks
    ADD COLUMN job_id bigint;
CREATE INDEX background_tasks_job_id_idx ON circle.background_tasks (job_id) WHERE job_id IS NOT NULL;
