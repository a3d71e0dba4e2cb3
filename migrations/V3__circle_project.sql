-- GatheRing schema, part 3: projects, circles, circle work tables, background tasks, pipelines,
-- scheduled actions, and agent goals (schema agent, created here because they reference
-- circles and background tasks).

-- ===========================================================================
-- project.projects
-- ===========================================================================
CREATE TABLE project.projects (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text NOT NULL CHECK (char_length(name) <= 200),
    display_name       text,
    description        text,
    repository_url     text,
    -- The projects API writes local_path, the workspace reads repository_path: both are kept and
    -- a trigger fills one from the other (see project.sync_project_paths below).
    local_path         text,
    repository_path    text,
    branch             text NOT NULL DEFAULT 'main',
    tech_stack         text[] NOT NULL DEFAULT '{}',
    languages          text[] NOT NULL DEFAULT '{}',
    frameworks         text[] NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'active',
    context            text,
    conventions        jsonb NOT NULL DEFAULT '{}',
    key_files          jsonb NOT NULL DEFAULT '{}',
    commands           jsonb NOT NULL DEFAULT '{}',
    tools              jsonb NOT NULL DEFAULT '{}',
    quality_standards  jsonb NOT NULL DEFAULT '{}',
    notes              text[] NOT NULL DEFAULT '{}',
    venv_path          text,
    python_version     text,
    owner_id           text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- POST /projects answers 409 when the path is already used.
CREATE UNIQUE INDEX projects_local_path_key ON project.projects (local_path) WHERE local_path IS NOT NULL;
CREATE INDEX projects_status_updated_idx ON project.projects (status, updated_at DESC);
CREATE INDEX projects_updated_at_idx ON project.projects (updated_at DESC);

CREATE FUNCTION project.sync_project_paths() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.local_path IS DISTINCT FROM OLD.local_path
       AND NEW.repository_path IS NOT DISTINCT FROM OLD.repository_path
       AND OLD.repository_path IS NOT DISTINCT FROM OLD.local_path THEN
        -- local_path moved and repository_path was only mirroring it: follow.
        NEW.repository_path := NEW.local_path;
    END IF;
    IF NEW.repository_path IS NULL THEN
        NEW.repository_path := NEW.local_path;
    END IF;
    IF NEW.local_path IS NULL THEN
        NEW.local_path := NEW.repository_path;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER projects_sync_paths BEFORE INSERT OR UPDATE ON project.projects
    FOR EACH ROW EXECUTE FUNCTION project.sync_project_paths();
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON project.projects
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE project.projects IS 'Software projects (workspace roots and agent context)';

-- Now that projects exist, link sessions to them.
ALTER TABLE agent.sessions
    ADD CONSTRAINT sessions_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES project.projects(id) ON DELETE SET NULL;

-- ---------------------------------------------------------------------------
-- project.files: indexed project files for RAG.
-- ---------------------------------------------------------------------------
CREATE TABLE project.files (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint NOT NULL REFERENCES project.projects(id) ON DELETE CASCADE,
    file_path      text NOT NULL,
    file_type      text,
    file_name      text,
    summary        text,
    symbols        text[] NOT NULL DEFAULT '{}',
    embedding      vector(1536),
    size_bytes     bigint,
    line_count     integer,
    last_modified  timestamptz,
    content_hash   text,
    importance     double precision NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    indexed_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT files_project_path_key UNIQUE (project_id, file_path)
);
CREATE INDEX files_embedding_hnsw_idx ON project.files USING hnsw (embedding vector_cosine_ops);
CREATE TRIGGER files_set_updated_at BEFORE UPDATE ON project.files
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- ===========================================================================
-- circle.circles and membership
-- ===========================================================================
CREATE TABLE circle.circles (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    display_name    text,
    description     text,
    owner_id        text,
    require_review  boolean NOT NULL DEFAULT true,
    auto_route      boolean NOT NULL DEFAULT true,
    max_concurrent_tasks integer NOT NULL DEFAULT 5 CHECK (max_concurrent_tasks > 0),
    status          public.circle_status NOT NULL DEFAULT 'stopped',
    is_active       boolean NOT NULL DEFAULT true,
    project_id      bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    settings        jsonb NOT NULL DEFAULT '{}',
    review_policy   jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    stopped_at      timestamptz
);
-- Names are unique among live circles; DELETE /circles/{name} soft-deletes (is_active = false),
-- after which the name can be reused. Upsert target: ON CONFLICT (name) WHERE is_active.
CREATE UNIQUE INDEX circles_active_name_key ON circle.circles (name) WHERE is_active;
CREATE INDEX circles_name_idx ON circle.circles (name);
CREATE INDEX circles_project_id_idx ON circle.circles (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX circles_status_idx ON circle.circles (status) WHERE is_active;
CREATE TRIGGER circles_set_updated_at BEFORE UPDATE ON circle.circles
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE circle.circles IS 'Gathering circles (teams of agents); soft-deleted via is_active';

CREATE TABLE circle.members (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id     bigint NOT NULL REFERENCES circle.circles(id) ON DELETE CASCADE,
    agent_id      bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    role          public.agent_role NOT NULL DEFAULT 'member',
    permissions   jsonb NOT NULL DEFAULT '{}',
    competencies  text[] NOT NULL DEFAULT '{}',
    can_review    text[] NOT NULL DEFAULT '{}',
    is_active     boolean NOT NULL DEFAULT true,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    left_at       timestamptz,
    CONSTRAINT members_circle_agent_key UNIQUE (circle_id, agent_id)
);
CREATE INDEX members_agent_id_idx ON circle.members (agent_id);
CREATE INDEX members_agent_active_idx ON circle.members (agent_id) WHERE is_active;
COMMENT ON TABLE circle.members IS 'Circle membership with per-circle competencies';

CREATE TABLE project.circle_projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id   bigint NOT NULL REFERENCES circle.circles(id) ON DELETE CASCADE,
    project_id  bigint NOT NULL REFERENCES project.projects(id) ON DELETE CASCADE,
    is_primary  boolean NOT NULL DEFAULT false,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT circle_projects_circle_project_key UNIQUE (circle_id, project_id)
);
CREATE INDEX circle_projects_project_id_idx ON project.circle_projects (project_id);

-- ---------------------------------------------------------------------------
-- Circle task board, assignments, conflicts, events (archive DDL; the upstream API kept these
-- in memory). Kept so circle work can be persisted.
-- ---------------------------------------------------------------------------
CREATE TABLE circle.tasks (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id              bigint NOT NULL REFERENCES circle.circles(id) ON DELETE CASCADE,
    project_id             bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    title                  text NOT NULL CHECK (char_length(title) <= 200),
    description            text,
    task_type              text NOT NULL DEFAULT 'general',
    priority               public.task_priority NOT NULL DEFAULT 'medium',
    status                 public.task_status NOT NULL DEFAULT 'pending',
    required_competencies  text[] NOT NULL DEFAULT '{}',
    requires_review        boolean NOT NULL DEFAULT true,
    review_types           text[] NOT NULL DEFAULT '{quality}',
    context                jsonb NOT NULL DEFAULT '{}',
    result                 text,
    artifacts              jsonb NOT NULL DEFAULT '[]',
    files_modified         text[] NOT NULL DEFAULT '{}',
    iteration              integer NOT NULL DEFAULT 1 CHECK (iteration >= 1),
    assigned_agent_id      bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    reviewer_agent_id      bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    parent_task_id         bigint REFERENCES circle.tasks(id) ON DELETE SET NULL,
    conversation_id        bigint,  -- FK added in V4 (communication.conversations)
    created_by_agent_id    bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    created_by_user_id     text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    due_at                 timestamptz
);
CREATE INDEX tasks_circle_status_idx ON circle.tasks (circle_id, status);
CREATE INDEX tasks_status_idx ON circle.tasks (status);
CREATE INDEX tasks_project_id_idx ON circle.tasks (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX tasks_assigned_agent_id_idx ON circle.tasks (assigned_agent_id) WHERE assigned_agent_id IS NOT NULL;
CREATE INDEX tasks_reviewer_agent_id_idx ON circle.tasks (reviewer_agent_id) WHERE reviewer_agent_id IS NOT NULL;
CREATE INDEX tasks_parent_task_id_idx ON circle.tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX tasks_conversation_id_idx ON circle.tasks (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX tasks_created_by_agent_id_idx ON circle.tasks (created_by_agent_id) WHERE created_by_agent_id IS NOT NULL;
CREATE INDEX tasks_required_competencies_idx ON circle.tasks USING gin (required_competencies);
CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON circle.tasks
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TABLE circle.task_assignments (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id          bigint NOT NULL REFERENCES circle.tasks(id) ON DELETE CASCADE,
    agent_id         bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    assignment_role  text NOT NULL DEFAULT 'assignee',
    is_active        boolean NOT NULL DEFAULT true,
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CONSTRAINT task_assignments_task_agent_role_key UNIQUE (task_id, agent_id, assignment_role)
);
CREATE INDEX task_assignments_agent_id_idx ON circle.task_assignments (agent_id);

CREATE TABLE circle.conflicts (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id             bigint NOT NULL REFERENCES circle.circles(id) ON DELETE CASCADE,
    conflict_type         text NOT NULL,  -- file_collision | task_deadlock | resource | opinion
    agent_ids             bigint[] NOT NULL DEFAULT '{}',
    task_ids              bigint[] NOT NULL DEFAULT '{}',
    file_paths            text[] NOT NULL DEFAULT '{}',
    resource              text,
    description           text NOT NULL DEFAULT '',
    context               jsonb NOT NULL DEFAULT '{}',
    status                text NOT NULL DEFAULT 'open',
    resolution            text,
    resolved_by_agent_id  bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    resolved_by_user_id   text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    resolved_at           timestamptz
);
CREATE INDEX conflicts_circle_id_idx ON circle.conflicts (circle_id, created_at DESC);
CREATE INDEX conflicts_open_idx ON circle.conflicts (circle_id) WHERE status <> 'resolved';
CREATE INDEX conflicts_resolved_by_agent_id_idx ON circle.conflicts (resolved_by_agent_id)
    WHERE resolved_by_agent_id IS NOT NULL;

CREATE TABLE circle.events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id        bigint REFERENCES circle.circles(id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    source_agent_id  bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    data             jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX circle_events_circle_created_idx ON circle.events (circle_id, created_at DESC);
CREATE INDEX circle_events_type_idx ON circle.events (event_type);
CREATE INDEX circle_events_source_agent_id_idx ON circle.events (source_agent_id) WHERE source_agent_id IS NOT NULL;

-- ===========================================================================
-- circle.background_tasks: long-running autonomous agent tasks
-- ===========================================================================
CREATE TABLE circle.background_tasks (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id             bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    circle_id            bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    goal                 text NOT NULL,
    goal_context         jsonb NOT NULL DEFAULT '{}',
    status               public.background_task_status NOT NULL DEFAULT 'pending',
    priority             public.task_priority NOT NULL DEFAULT 'medium',
    max_steps            integer NOT NULL DEFAULT 50 CHECK (max_steps > 0),
    timeout_seconds      integer NOT NULL DEFAULT 3600 CHECK (timeout_seconds > 0),
    checkpoint_interval  integer NOT NULL DEFAULT 5 CHECK (checkpoint_interval > 0),
    current_step         integer NOT NULL DEFAULT 0 CHECK (current_step >= 0),
    progress_percent     integer NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
    progress_summary     text,
    last_action          text,
    checkpoint_data      jsonb NOT NULL DEFAULT '{}',
    last_checkpoint_at   timestamptz,
    final_result         text,
    artifacts            jsonb NOT NULL DEFAULT '[]',
    error_message        text,
    total_llm_calls      integer NOT NULL DEFAULT 0 CHECK (total_llm_calls >= 0),
    total_tokens_used    integer NOT NULL DEFAULT 0 CHECK (total_tokens_used >= 0),
    total_tool_calls     integer NOT NULL DEFAULT 0 CHECK (total_tool_calls >= 0),
    created_by_user_id   text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz,
    paused_at            timestamptz
);
CREATE INDEX background_tasks_agent_created_idx ON circle.background_tasks (agent_id, created_at DESC);
CREATE INDEX background_tasks_circle_id_idx ON circle.background_tasks (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX background_tasks_status_created_idx ON circle.background_tasks (status, created_at DESC);
CREATE INDEX background_tasks_created_at_idx ON circle.background_tasks (created_at DESC);
-- Live tasks (concurrency limit checks, recovery at startup).
CREATE INDEX background_tasks_live_idx ON circle.background_tasks (agent_id, status)
    WHERE status IN ('pending', 'running', 'paused');
CREATE TRIGGER background_tasks_set_updated_at BEFORE UPDATE ON circle.background_tasks
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE circle.background_tasks IS 'Long-running autonomous agent tasks (A11)';

CREATE TABLE circle.background_task_steps (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id        bigint NOT NULL REFERENCES circle.background_tasks(id) ON DELETE CASCADE,
    step_number    integer NOT NULL CHECK (step_number >= 0),
    action_type    text NOT NULL CHECK (action_type IN ('plan', 'execute', 'tool_call', 'memory_recall',
                                                         'memory_store', 'checkpoint', 'complete_check')),
    action_input   text,
    action_output  text,
    tool_name      text,
    tool_input     jsonb,
    tool_output    jsonb,
    tool_success   boolean,
    llm_model      text,
    tokens_input   integer NOT NULL DEFAULT 0,
    tokens_output  integer NOT NULL DEFAULT 0,
    duration_ms    integer,
    success        boolean NOT NULL DEFAULT true,
    error_message  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- GET /background-tasks/{id}/steps: highest step_number first.
CREATE INDEX background_task_steps_task_step_idx ON circle.background_task_steps (task_id, step_number DESC, id DESC);
COMMENT ON TABLE circle.background_task_steps IS 'Audit trail of each background task step (several rows per step_number possible)';

-- ===========================================================================
-- Pipelines (DAGs of nodes)
-- ===========================================================================
CREATE TABLE circle.pipelines (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  text NOT NULL CHECK (char_length(name) <= 255),
    description           text,
    status                text NOT NULL DEFAULT 'draft' CHECK (status IN ('active', 'paused', 'draft')),
    nodes                 jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(nodes) = 'array'),
    edges                 jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(edges) = 'array'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    last_run              timestamptz,
    run_count             integer NOT NULL DEFAULT 0,
    success_count         integer NOT NULL DEFAULT 0,
    error_count           integer NOT NULL DEFAULT 0,
    timeout_seconds       integer NOT NULL DEFAULT 3600 CHECK (timeout_seconds > 0),
    max_retries_per_node  integer NOT NULL DEFAULT 3 CHECK (max_retries_per_node >= 1),
    retry_backoff_base    double precision NOT NULL DEFAULT 1.0 CHECK (retry_backoff_base >= 0),
    retry_backoff_max     double precision NOT NULL DEFAULT 60.0 CHECK (retry_backoff_max >= 0)
);
CREATE INDEX pipelines_status_updated_idx ON circle.pipelines (status, updated_at DESC);
CREATE INDEX pipelines_updated_at_idx ON circle.pipelines (updated_at DESC);
CREATE TRIGGER pipelines_set_updated_at BEFORE UPDATE ON circle.pipelines
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TABLE circle.pipeline_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_id       bigint NOT NULL REFERENCES circle.pipelines(id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'timeout')),
    started_at        timestamptz,
    completed_at      timestamptz,
    current_node      text,
    logs              jsonb NOT NULL DEFAULT '[]',
    trigger_data      jsonb NOT NULL DEFAULT '{}',
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    duration_seconds  double precision NOT NULL DEFAULT 0 CHECK (duration_seconds >= 0)
);
CREATE INDEX pipeline_runs_pipeline_created_idx ON circle.pipeline_runs (pipeline_id, created_at DESC);
CREATE INDEX pipeline_runs_live_idx ON circle.pipeline_runs (status) WHERE status IN ('pending', 'running');

CREATE TABLE circle.pipeline_node_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         bigint NOT NULL REFERENCES circle.pipeline_runs(id) ON DELETE CASCADE,
    node_id        text NOT NULL,
    node_type      text NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    input_data     jsonb NOT NULL DEFAULT '{}',
    output_data    jsonb NOT NULL DEFAULT '{}',
    error_message  text,
    retry_count    integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    started_at     timestamptz,
    completed_at   timestamptz,
    duration_ms    integer NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- One row per node per run: retries update the row (retry_count), they do not add rows.
    CONSTRAINT pipeline_node_runs_run_node_key UNIQUE (run_id, node_id)
);

-- ===========================================================================
-- Scheduled actions
-- ===========================================================================
CREATE TABLE circle.scheduled_actions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id             bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    circle_id            bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    name                 text NOT NULL CHECK (char_length(name) <= 255),
    description          text,
    schedule_type        public.schedule_type NOT NULL DEFAULT 'cron',
    cron_expression      text,
    interval_seconds     integer,
    event_trigger        text,
    timezone             text NOT NULL DEFAULT 'UTC',
    missed_run_policy    text NOT NULL DEFAULT 'run_once'
                         CHECK (missed_run_policy IN ('skip', 'run_once', 'catch_up')),
    action_type          text NOT NULL DEFAULT 'run_task',
    action_config        jsonb NOT NULL DEFAULT '{}',
    goal                 text NOT NULL DEFAULT '',
    max_steps            integer NOT NULL DEFAULT 50 CHECK (max_steps > 0),
    timeout_seconds      integer NOT NULL DEFAULT 3600 CHECK (timeout_seconds > 0),
    status               public.scheduled_action_status NOT NULL DEFAULT 'active',
    start_date           timestamptz DEFAULT now(),
    end_date             timestamptz,
    max_executions       integer,
    execution_count      integer NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    retry_on_failure     boolean NOT NULL DEFAULT true,
    max_retries          integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    retry_delay_seconds  integer NOT NULL DEFAULT 300 CHECK (retry_delay_seconds >= 0),
    allow_concurrent     boolean NOT NULL DEFAULT false,
    tags                 text[] NOT NULL DEFAULT '{}',
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    last_run_at          timestamptz,
    next_run_at          timestamptz,
    CONSTRAINT scheduled_actions_cron_check
        CHECK (schedule_type <> 'cron' OR (cron_expression IS NOT NULL AND btrim(cron_expression) <> '')),
    CONSTRAINT scheduled_actions_interval_check
        CHECK (schedule_type <> 'interval' OR interval_seconds IS NOT NULL),
    CONSTRAINT scheduled_actions_interval_min_check
        CHECK (interval_seconds IS NULL OR interval_seconds >= 60),
    CONSTRAINT scheduled_actions_event_check
        CHECK (schedule_type <> 'event' OR (event_trigger IS NOT NULL AND btrim(event_trigger) <> '')),
    CONSTRAINT scheduled_actions_max_executions_check
        CHECK (max_executions IS NULL OR max_executions > 0),
    CONSTRAINT scheduled_actions_dates_check
        CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date)
);
CREATE INDEX scheduled_actions_agent_id_idx ON circle.scheduled_actions (agent_id);
CREATE INDEX scheduled_actions_circle_id_idx ON circle.scheduled_actions (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX scheduled_actions_status_idx ON circle.scheduled_actions (status);
CREATE INDEX scheduled_actions_created_at_idx ON circle.scheduled_actions (created_at DESC);
-- Scheduler: earliest due active schedule (claimed FOR UPDATE SKIP LOCKED).
CREATE INDEX scheduled_actions_due_idx ON circle.scheduled_actions (next_run_at)
    WHERE status = 'active' AND next_run_at IS NOT NULL;
CREATE INDEX scheduled_actions_event_idx ON circle.scheduled_actions (event_trigger)
    WHERE schedule_type = 'event' AND status = 'active';
CREATE TRIGGER scheduled_actions_set_updated_at BEFORE UPDATE ON circle.scheduled_actions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE circle.scheduled_actions IS 'Schedules (cron/interval/once/event) that dispatch an action_type';
COMMENT ON COLUMN circle.scheduled_actions.action_config IS 'Settings of action_type (run_task, execute_pipeline, send_notification, call_api)';

CREATE TABLE circle.scheduled_action_runs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scheduled_action_id  bigint NOT NULL REFERENCES circle.scheduled_actions(id) ON DELETE CASCADE,
    background_task_id   bigint REFERENCES circle.background_tasks(id) ON DELETE SET NULL,
    pipeline_run_id      bigint REFERENCES circle.pipeline_runs(id) ON DELETE SET NULL,
    run_number           integer NOT NULL CHECK (run_number >= 1),
    -- Due time this run fulfils (NULL for manual/event runs). Unique per action: exactly-once firing.
    scheduled_for        timestamptz,
    triggered_at         timestamptz NOT NULL DEFAULT now(),
    triggered_by         text NOT NULL DEFAULT 'scheduler'
                         CHECK (triggered_by IN ('scheduler', 'manual', 'event', 'recovery')),
    status               public.background_task_status NOT NULL DEFAULT 'pending',
    started_at           timestamptz,
    completed_at         timestamptz,
    result_summary       text,
    result               jsonb,
    error_message        text,
    retry_count          integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    duration_ms          integer NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    steps_executed       integer NOT NULL DEFAULT 0 CHECK (steps_executed >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scheduled_action_runs_action_due_key UNIQUE (scheduled_action_id, scheduled_for)
);
-- Runs list (newest triggered_at first) and the dashboard's "last run" lookup.
CREATE INDEX scheduled_action_runs_action_triggered_idx
    ON circle.scheduled_action_runs (scheduled_action_id, triggered_at DESC, id DESC);
-- Dashboard success/failure counts (index-only).
CREATE INDEX scheduled_action_runs_action_status_idx ON circle.scheduled_action_runs (scheduled_action_id, status);
CREATE INDEX scheduled_action_runs_background_task_id_idx ON circle.scheduled_action_runs (background_task_id)
    WHERE background_task_id IS NOT NULL;
CREATE INDEX scheduled_action_runs_pipeline_run_id_idx ON circle.scheduled_action_runs (pipeline_run_id)
    WHERE pipeline_run_id IS NOT NULL;
CREATE INDEX scheduled_action_runs_live_idx ON circle.scheduled_action_runs (status)
    WHERE status IN ('pending', 'running');

-- ===========================================================================
-- agent.goals (hierarchical), dependencies, activity log
-- ===========================================================================
CREATE TABLE agent.goals (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id                bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    circle_id               bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    parent_id               bigint REFERENCES agent.goals(id) ON DELETE CASCADE,
    depth                   integer NOT NULL DEFAULT 0 CHECK (depth >= 0),
    title                   text NOT NULL CHECK (char_length(title) <= 255),
    description             text NOT NULL DEFAULT '',
    success_criteria        text,
    context                 jsonb NOT NULL DEFAULT '{}',
    status                  public.goal_status NOT NULL DEFAULT 'pending',
    priority                public.goal_priority NOT NULL DEFAULT 'medium',
    progress_percent        integer NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
    status_message          text,
    deadline                timestamptz,
    estimated_hours         double precision CHECK (estimated_hours IS NULL OR estimated_hours >= 0),
    actual_hours            double precision NOT NULL DEFAULT 0 CHECK (actual_hours >= 0),
    is_decomposed           boolean NOT NULL DEFAULT false,
    decomposition_strategy  text,
    max_subgoals            integer NOT NULL DEFAULT 5 CHECK (max_subgoals > 0),
    background_task_id      bigint REFERENCES circle.background_tasks(id) ON DELETE SET NULL,
    last_worked_at          timestamptz,
    attempts                integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts            integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    result_summary          text,
    artifacts               jsonb NOT NULL DEFAULT '[]',
    lessons_learned         text,
    tags                    text[] NOT NULL DEFAULT '{}',
    metadata                jsonb NOT NULL DEFAULT '{}',
    created_by              text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    completed_at            timestamptz,
    CONSTRAINT goals_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX goals_agent_created_idx ON agent.goals (agent_id, created_at DESC);
CREATE INDEX goals_circle_id_idx ON agent.goals (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX goals_parent_status_idx ON agent.goals (parent_id, status) WHERE parent_id IS NOT NULL;
CREATE INDEX goals_roots_created_idx ON agent.goals (created_at DESC) WHERE parent_id IS NULL;
CREATE INDEX goals_status_idx ON agent.goals (status);
CREATE INDEX goals_created_at_idx ON agent.goals (created_at DESC);
CREATE INDEX goals_background_task_id_idx ON agent.goals (background_task_id) WHERE background_task_id IS NOT NULL;
CREATE INDEX goals_deadline_idx ON agent.goals (deadline) WHERE deadline IS NOT NULL;

-- depth follows the parent (root = 0).
CREATE FUNCTION agent.set_goal_depth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.depth := 0;
    ELSE
        SELECT g.depth + 1 INTO NEW.depth FROM agent.goals g WHERE g.id = NEW.parent_id;
        NEW.depth := COALESCE(NEW.depth, 0);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER goals_set_depth BEFORE INSERT OR UPDATE OF parent_id ON agent.goals
    FOR EACH ROW EXECUTE FUNCTION agent.set_goal_depth();
CREATE TRIGGER goals_set_updated_at BEFORE UPDATE ON agent.goals
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.goals IS 'Agent goals with hierarchical decomposition (parent_id)';

CREATE TABLE agent.goal_dependencies (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    goal_id          bigint NOT NULL REFERENCES agent.goals(id) ON DELETE CASCADE,
    depends_on_id    bigint NOT NULL REFERENCES agent.goals(id) ON DELETE CASCADE,
    dependency_type  text NOT NULL DEFAULT 'blocks' CHECK (dependency_type IN ('blocks', 'informs', 'enhances')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT goal_dependencies_no_self CHECK (goal_id <> depends_on_id),
    CONSTRAINT goal_dependencies_goal_depends_key UNIQUE (goal_id, depends_on_id)
);
CREATE INDEX goal_dependencies_depends_on_id_idx ON agent.goal_dependencies (depends_on_id);

CREATE TABLE agent.goal_activities (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    goal_id        bigint NOT NULL REFERENCES agent.goals(id) ON DELETE CASCADE,
    activity_type  text NOT NULL,
    description    text,
    old_value      text,
    new_value      text,
    actor_type     text CHECK (actor_type IS NULL OR actor_type IN ('agent', 'user', 'system')),
    actor_id       text,
    tokens_used    integer NOT NULL DEFAULT 0,
    duration_ms    integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX goal_activities_goal_created_idx ON agent.goal_activities (goal_id, created_at DESC, id DESC);
