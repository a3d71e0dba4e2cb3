-- Scheduler (issue 9): event-trigger de-duplication, the event-log cursor of event schedules,
-- an index for the "previous run still running" check, wake-ups of sleeping schedulers when a
-- schedule may be due earlier, and runs following the background task or pipeline run they
-- started.

-- ---------------------------------------------------------------------------
-- Event schedules fire once per matching event: one run per (schedule, event).
-- ---------------------------------------------------------------------------
ALTER TABLE circle.scheduled_action_runs ADD COLUMN event_id bigint;
COMMENT ON COLUMN circle.scheduled_action_runs.event_id IS
    'events.log id an event schedule fired on (unique per schedule: exactly once per event)';
CREATE UNIQUE INDEX scheduled_action_runs_action_event_key
    ON circle.scheduled_action_runs (scheduled_action_id, event_id)
    WHERE event_id IS NOT NULL;

-- allow_concurrent = false: is a run of this schedule still pending or running?
CREATE INDEX scheduled_action_runs_action_live_idx
    ON circle.scheduled_action_runs (scheduled_action_id)
    WHERE status IN ('pending', 'running');

-- Where the scheduler is in the event log, as (xid, id) (see gathering-events). One row per
-- reader; the instance holding the row lock is the one reading.
CREATE TABLE circle.scheduler_cursors (
    name        text PRIMARY KEY CHECK (char_length(name) <= 100),
    xid         bigint NOT NULL DEFAULT 0,
    event_id    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO circle.scheduler_cursors (name) VALUES ('event_schedules');
COMMENT ON TABLE circle.scheduler_cursors IS
    'Event-log position of event schedules; locked FOR UPDATE SKIP LOCKED by the instance reading';

-- ---------------------------------------------------------------------------
-- Wake sleeping schedulers when a schedule becomes due earlier than they may have planned:
-- a new active schedule, a resumed one, or an earlier next_run_at. Claims only move
-- next_run_at later, so they do not wake anyone. PostgreSQL folds identical notifications of
-- one transaction into one.
-- ---------------------------------------------------------------------------
CREATE FUNCTION circle.wake_schedulers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scheduled_actions', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER scheduled_actions_wake_on_insert
    AFTER INSERT ON circle.scheduled_actions
    FOR EACH ROW
    WHEN (NEW.status = 'active' AND NEW.next_run_at IS NOT NULL)
    EXECUTE FUNCTION circle.wake_schedulers();

CREATE TRIGGER scheduled_actions_wake_on_update
    AFTER UPDATE OF status, next_run_at ON circle.scheduled_actions
    FOR EACH ROW
    WHEN (NEW.status = 'active' AND NEW.next_run_at IS NOT NULL
          AND (OLD.status <> 'active' OR OLD.next_run_at IS NULL
               OR NEW.next_run_at < OLD.next_run_at))
    EXECUTE FUNCTION circle.wake_schedulers();

-- ---------------------------------------------------------------------------
-- A run that started a background task or a pipeline run follows its status, whoever
-- changes it, and its outcome is published (scheduled_action.completed / .failed) in the
-- same transaction, like every event.
-- ---------------------------------------------------------------------------
CREATE FUNCTION circle.follow_scheduled_run(
    p_run_filter text, p_id bigint, p_status public.background_task_status,
    p_started timestamptz, p_completed timestamptz, p_summary text, p_error text,
    p_steps integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_final boolean := p_status IN ('completed', 'failed', 'cancelled', 'timeout');
    v_event_id bigint;
BEGIN
    FOR r IN
        UPDATE circle.scheduled_action_runs run SET
            status = p_status,
            started_at = COALESCE(run.started_at, p_started),
            completed_at = CASE WHEN v_final THEN COALESCE(p_completed, now()) END,
            result_summary = COALESCE(left(p_summary, 2000), run.result_summary),
            error_message = CASE WHEN p_status IN ('failed', 'timeout', 'cancelled')
                                 THEN COALESCE(left(p_error, 2000), run.error_message)
                                 ELSE run.error_message END,
            steps_executed = GREATEST(run.steps_executed, COALESCE(p_steps, 0)),
            duration_ms = CASE WHEN v_final THEN LEAST(2147483647, GREATEST(0,
                              (EXTRACT(EPOCH FROM (COALESCE(p_completed, now())
                                  - COALESCE(run.started_at, p_started, run.triggered_at))) * 1000)::bigint))
                          ELSE run.duration_ms END
        WHERE ((p_run_filter = 'task' AND run.background_task_id = p_id)
            OR (p_run_filter = 'pipeline' AND run.pipeline_run_id = p_id))
          AND run.status IS DISTINCT FROM p_status
        RETURNING run.id, run.scheduled_action_id, run.status
    LOOP
        IF v_final THEN
            INSERT INTO events.log (kind, topics, payload, source)
            VALUES (
                CASE WHEN r.status = 'completed' THEN 'scheduled_action.completed'
                     ELSE 'scheduled_action.failed' END,
                ARRAY['scheduled_actions', 'scheduled_actions:' || r.scheduled_action_id],
                jsonb_build_object(
                    'action_id', r.scheduled_action_id, 'run_id', r.id,
                    'status', r.status::text,
                    CASE WHEN p_run_filter = 'task' THEN 'background_task_id'
                         ELSE 'pipeline_run_id' END, p_id,
                    'error', CASE WHEN r.status <> 'completed' THEN left(p_error, 2000) END),
                'scheduler')
            RETURNING id INTO v_event_id;
            PERFORM pg_notify('events', v_event_id::text);
        END IF;
    END LOOP;
END;
$$;

CREATE FUNCTION circle.scheduled_run_follows_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM circle.follow_scheduled_run('task', NEW.id, NEW.status, NEW.started_at,
        NEW.completed_at, NEW.final_result, NEW.error_message, NEW.current_step);
    RETURN NULL;
END;
$$;

CREATE TRIGGER background_tasks_scheduled_run_status
    AFTER UPDATE OF status ON circle.background_tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION circle.scheduled_run_follows_task();

CREATE FUNCTION circle.scheduled_run_follows_pipeline() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM circle.follow_scheduled_run('pipeline', NEW.id,
        NEW.status::public.background_task_status, NEW.started_at, NEW.completed_at,
        NULL, NEW.error_message, NULL);
    RETURN NULL;
END;
$$;

CREATE TRIGGER pipeline_runs_scheduled_run_status
    AFTER UPDATE OF status ON circle.pipeline_runs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION circle.scheduled_run_follows_pipeline();
