-- Circles and conversations that run durably on executors (gathering-circles owns these
-- tables' writes). The archive DDL of V3/V4 is kept; this migration moves it to what the API
-- serves and what the executors need to run tasks, reviews and conversations exactly once.

-- ===========================================================================
-- circle.tasks: the API's statuses and 1..10 priorities, plus routing, review and fencing state
-- ===========================================================================
ALTER TABLE circle.tasks ALTER COLUMN status DROP DEFAULT;
ALTER TABLE circle.tasks ALTER COLUMN status TYPE text USING (
    CASE status::text
        WHEN 'claimed' THEN 'assigned'
        WHEN 'changes_requested' THEN 'assigned'
        WHEN 'review' THEN 'in_review'
        WHEN 'blocked' THEN 'failed'
        WHEN 'cancelled' THEN 'failed'
        ELSE status::text
    END);
ALTER TABLE circle.tasks ALTER COLUMN status SET DEFAULT 'pending';
ALTER TABLE circle.tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('pending', 'assigned', 'in_progress', 'in_review', 'completed', 'failed'));

ALTER TABLE circle.tasks ALTER COLUMN priority DROP DEFAULT;
ALTER TABLE circle.tasks ALTER COLUMN priority TYPE smallint USING (
    CASE priority::text WHEN 'low' THEN 8 WHEN 'high' THEN 3 WHEN 'critical' THEN 1 ELSE 5 END);
ALTER TABLE circle.tasks ALTER COLUMN priority SET DEFAULT 5;
ALTER TABLE circle.tasks ADD CONSTRAINT tasks_priority_check CHECK (priority BETWEEN 1 AND 10);

ALTER TABLE circle.tasks
    -- Why a task is where it is: 'no qualified member', 'escalated', the reviewer's comments…
    ADD COLUMN status_reason    text,
    -- Files or resources the task declares it will touch (conflict detection).
    ADD COLUMN resources        text[] NOT NULL DEFAULT '{}',
    -- Rejections since the task was last (re)assigned by a human; bounded by the circle.
    ADD COLUMN review_rounds    integer NOT NULL DEFAULT 0 CHECK (review_rounds >= 0),
    -- A work job was enqueued for the current iteration (counts against max_concurrent_tasks).
    ADD COLUMN dispatched       boolean NOT NULL DEFAULT false,
    -- The job attempt executing the task: every write of its result is fenced on it.
    ADD COLUMN runner           text,
    -- The task's live job (work or review), cancelled when a human decides instead.
    ADD COLUMN job_id           bigint,
    ADD COLUMN quality_score    double precision CHECK (quality_score BETWEEN 0 AND 1),
    ADD COLUMN review_comments  text,
    ADD COLUMN assigned_at      timestamptz;

-- Admission: the next assigned tasks of a circle that wait for a slot.
CREATE INDEX tasks_waiting_idx ON circle.tasks (circle_id, priority, id)
    WHERE status = 'assigned' AND NOT dispatched;
-- Workload of an agent (assigned and running tasks) and open reviews.
CREATE INDEX tasks_agent_live_idx ON circle.tasks (assigned_agent_id)
    WHERE status IN ('assigned', 'in_progress');
CREATE INDEX tasks_reviewer_live_idx ON circle.tasks (reviewer_agent_id) WHERE status = 'in_review';
-- Conflict detection: active tasks declaring or touching a resource.
CREATE INDEX tasks_resources_idx ON circle.tasks USING gin (resources);
CREATE INDEX tasks_files_modified_idx ON circle.tasks USING gin (files_modified);

-- One open conflict per circle, resource and pair of tasks.
CREATE UNIQUE INDEX conflicts_open_key ON circle.conflicts (circle_id, resource, task_ids)
    WHERE status = 'open';
CREATE INDEX conflicts_task_ids_idx ON circle.conflicts USING gin (task_ids) WHERE status = 'open';

-- ===========================================================================
-- review.reviews: human reviews have no reviewer agent; one review per task iteration
-- ===========================================================================
ALTER TABLE review.reviews ALTER COLUMN reviewer_id DROP NOT NULL;
ALTER TABLE review.reviews
    ADD COLUMN reviewer_user_id  text,
    ADD COLUMN quality_score     double precision CHECK (quality_score BETWEEN 0 AND 1),
    ADD CONSTRAINT reviews_reviewer_present CHECK (reviewer_id IS NOT NULL OR reviewer_user_id IS NOT NULL);
CREATE UNIQUE INDEX reviews_task_iteration_key ON review.reviews (task_id, iteration);

-- ===========================================================================
-- communication: conversations run as jobs, message by message
-- ===========================================================================
ALTER TABLE communication.conversations
    -- The job attempt running the conversation: messages are stored only under its token.
    ADD COLUMN runner      text,
    -- Bumped by every start/advance that needs a new job (part of the job's unique key).
    ADD COLUMN run_seq     integer NOT NULL DEFAULT 0,
    -- The run goes on until turns_taken reaches this.
    ADD COLUMN turn_limit  integer NOT NULL DEFAULT 0 CHECK (turn_limit >= 0),
    ADD COLUMN job_id      bigint,
    ADD COLUMN error       text,
    ADD COLUMN created_by  text;

-- A turn is stored once, whichever executor ran it.
ALTER TABLE communication.messages ADD COLUMN turn integer CHECK (turn IS NULL OR turn >= 1);
CREATE UNIQUE INDEX messages_conversation_turn_key ON communication.messages (conversation_id, turn)
    WHERE turn IS NOT NULL;
CREATE INDEX conversations_live_created_idx ON communication.conversations (created_at DESC, id DESC)
    WHERE is_active;

UPDATE agent.skills
SET description = 'GatheRing circles: create, list, get, join, leave, members, update; create and list circle tasks.'
WHERE name = 'circles';
