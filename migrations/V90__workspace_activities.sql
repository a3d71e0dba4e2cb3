-- Workspace activities (contract §2.16): what agents and users did in a project's workspace.
-- Upstream kept them in memory (lost on restart, different on every instance); here they are
-- rows, shared by every edge. Owned by the edge (services/edge/src/workspace/activities.rs).
CREATE TABLE project.workspace_activities (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint NOT NULL REFERENCES project.projects (id) ON DELETE CASCADE,
    agent_id       bigint REFERENCES agent.agents (id) ON DELETE SET NULL,
    activity_type  text NOT NULL CHECK (activity_type IN (
                       'file_created', 'file_edited', 'file_deleted', 'commit', 'test_run',
                       'build', 'discussion', 'command_executed')),
    details        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    -- The API caller (token subject) who recorded it; NULL for system writes.
    created_by     text CHECK (char_length(created_by) <= 100),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workspace_activities_project_time
    ON project.workspace_activities (project_id, created_at DESC, id DESC);
CREATE INDEX workspace_activities_agent
    ON project.workspace_activities (agent_id) WHERE agent_id IS NOT NULL;
