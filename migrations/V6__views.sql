-- GatheRing schema, part 6: read views used by the API.
--
-- Per-row aggregates are LATERAL subqueries over indexed foreign keys, so a filter on the outer
-- table (WHERE id = $1, agent_id = $1, LIMIT n over an index order) only computes the
-- aggregates for the rows it returns. count(*) columns are bigint.

-- ---------------------------------------------------------------------------
-- agent.agents_full (GET /agents-db/{id}): agent + persona + model + provider.
-- ---------------------------------------------------------------------------
CREATE VIEW agent.agents_full AS
SELECT
    a.id,
    a.name,
    a.model_id,
    m.model_name,
    m.model_alias,
    prov.name                                    AS provider_name,
    a.persona_id,
    p.display_name                               AS persona_name,
    COALESCE(a.role, p.role)                     AS persona_role,
    COALESCE(p.full_prompt, p.base_prompt)       AS system_prompt,
    COALESCE(p.traits, '{}'::text[])             AS traits,
    COALESCE(p.communication_style, 'balanced')  AS communication_style,
    COALESCE(p.specializations, '{}'::text[])    AS specializations,
    COALESCE(p.languages, '{fr,en}'::text[])     AS languages,
    p.motto,
    a.temperature,
    COALESCE(a.max_tokens, m.max_output)         AS max_tokens,
    a.can_review,
    a.review_strictness,
    a.tasks_completed,
    a.reviews_done,
    a.approval_rate,
    a.average_quality_score,
    a.is_active,
    a.status,
    a.last_active_at,
    a.created_at,
    a.updated_at,
    m.context_window,
    m.extended_thinking,
    m.vision,
    m.pricing_in,
    m.pricing_out
FROM agent.agents a
LEFT JOIN agent.personas p     ON p.id = a.persona_id
LEFT JOIN agent.models m       ON m.id = a.model_id
LEFT JOIN agent.providers prov ON prov.id = m.provider_id;

COMMENT ON VIEW agent.agents_full IS 'Agent with persona, model and provider details (persona_role = agent role override, else persona role)';

-- ---------------------------------------------------------------------------
-- public.agent_dashboard (GET /agents-db): active agents with counts.
-- ---------------------------------------------------------------------------
CREATE VIEW public.agent_dashboard AS
SELECT
    a.id,
    a.name,
    prov.name                 AS provider,
    m.model_alias             AS model,
    a.status,
    a.is_active,
    a.tasks_completed,
    a.reviews_done,
    a.approval_rate,
    a.average_quality_score,
    a.last_active_at,
    p.display_name            AS persona_name,
    COALESCE(a.role, p.role)  AS persona_role,
    mem.memory_count,
    msg.message_count,
    cir.circle_count
FROM agent.agents a
LEFT JOIN agent.personas p     ON p.id = a.persona_id
LEFT JOIN agent.models m       ON m.id = a.model_id
LEFT JOIN agent.providers prov ON prov.id = m.provider_id
CROSS JOIN LATERAL (
    SELECT count(*) AS memory_count
    FROM memory.memories mm
    WHERE mm.agent_id = a.id AND mm.is_active
) mem
CROSS JOIN LATERAL (
    SELECT count(*) AS message_count
    FROM communication.chat_history ch
    WHERE ch.agent_id = a.id
) msg
CROSS JOIN LATERAL (
    SELECT count(*) AS circle_count
    FROM circle.members cm
    WHERE cm.agent_id = a.id AND cm.is_active
) cir
WHERE a.is_active;

COMMENT ON VIEW public.agent_dashboard IS 'Active agents with provider, model alias, persona and memory/message/circle counts';

-- ---------------------------------------------------------------------------
-- public.background_tasks_dashboard (GET /background-tasks): the §2.9 row.
-- Ordered running, pending, paused, others; then priority (critical first); then newest.
-- ---------------------------------------------------------------------------
CREATE VIEW public.background_tasks_dashboard AS
SELECT
    bt.id,
    bt.agent_id,
    a.name                                   AS agent_name,
    COALESCE(a.display_name, p.display_name) AS agent_display_name,
    bt.circle_id,
    c.name                                   AS circle_name,
    bt.goal,
    bt.status,
    bt.priority,
    bt.current_step,
    bt.max_steps,
    bt.progress_percent,
    bt.progress_summary,
    bt.last_action,
    bt.total_llm_calls,
    bt.total_tokens_used,
    bt.total_tool_calls,
    bt.error_message,
    bt.created_at,
    bt.started_at,
    bt.completed_at,
    CASE
        WHEN bt.started_at IS NULL THEN 0
        ELSE GREATEST(0, floor(extract(epoch FROM (COALESCE(bt.completed_at, now()) - bt.started_at))))::integer
    END                                      AS duration_seconds
FROM circle.background_tasks bt
JOIN agent.agents a         ON a.id = bt.agent_id
LEFT JOIN agent.personas p  ON p.id = a.persona_id
LEFT JOIN circle.circles c  ON c.id = bt.circle_id
ORDER BY
    CASE bt.status WHEN 'running' THEN 1 WHEN 'pending' THEN 2 WHEN 'paused' THEN 3 ELSE 4 END,
    bt.priority DESC,
    bt.created_at DESC,
    bt.id DESC;

-- Serves the view's ORDER BY directly, so "LIMIT n" reads n rows instead of sorting the table.
-- The expression must stay identical to the view's first sort key.
CREATE INDEX background_tasks_dashboard_order_idx ON circle.background_tasks (
    (CASE status WHEN 'running' THEN 1 WHEN 'pending' THEN 2 WHEN 'paused' THEN 3 ELSE 4 END),
    priority DESC, created_at DESC, id DESC
);

COMMENT ON VIEW public.background_tasks_dashboard IS 'Background tasks with agent/circle names and duration_seconds (running: until now)';

-- ---------------------------------------------------------------------------
-- public.scheduled_actions_dashboard (GET /scheduled-actions): §2.10 Action + last run + counts.
-- ---------------------------------------------------------------------------
CREATE VIEW public.scheduled_actions_dashboard AS
SELECT
    sa.id,
    sa.agent_id,
    sa.circle_id,
    sa.name,
    sa.description,
    sa.goal,
    sa.schedule_type,
    sa.cron_expression,
    sa.interval_seconds,
    sa.event_trigger,
    sa.status,
    sa.max_steps,
    sa.timeout_seconds,
    sa.retry_on_failure,
    sa.max_retries,
    sa.retry_delay_seconds,
    sa.allow_concurrent,
    sa.start_date,
    sa.end_date,
    sa.max_executions,
    sa.execution_count,
    sa.last_run_at,
    sa.next_run_at,
    sa.tags,
    sa.created_at,
    a.name                 AS agent_name,
    c.name                 AS circle_name,
    lr.status              AS last_run_status,
    lr.duration_ms         AS last_run_duration,
    lr.result_summary      AS last_run_result,
    rc.successful_runs,
    rc.failed_runs,
    -- Not in the §2.10 Action shape, exposed so one query serves the scheduler/edge.
    sa.action_type,
    sa.action_config,
    sa.metadata,
    sa.timezone,
    sa.missed_run_policy,
    sa.updated_at
FROM circle.scheduled_actions sa
LEFT JOIN agent.agents a   ON a.id = sa.agent_id
LEFT JOIN circle.circles c ON c.id = sa.circle_id
LEFT JOIN LATERAL (
    SELECT r.status, r.duration_ms, r.result_summary
    FROM circle.scheduled_action_runs r
    WHERE r.scheduled_action_id = sa.id
    ORDER BY r.triggered_at DESC, r.id DESC
    LIMIT 1
) lr ON true
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status = 'completed')              AS successful_runs,
           count(*) FILTER (WHERE r.status IN ('failed', 'timeout'))   AS failed_runs
    FROM circle.scheduled_action_runs r
    WHERE r.scheduled_action_id = sa.id
) rc;

COMMENT ON VIEW public.scheduled_actions_dashboard IS 'Scheduled actions with agent/circle names, last run and success/failure counts (timeout counts as failed)';

-- ---------------------------------------------------------------------------
-- public.goals_dashboard (GET /goals*): goal columns + tree position + derived counts.
-- The tree position is computed by walking UP from each returned goal (recursive, bounded by the
-- depth, via the primary key), so filters on the outer query stay cheap.
--   path       = titles from the root down to this goal, joined with ' > '
--   tree_depth = 1 for a root goal
--   ancestors  = ids from the root down to this goal (inclusive)
--   blocking_count = 'blocks' dependencies whose target is not completed/cancelled
-- ---------------------------------------------------------------------------
CREATE VIEW public.goals_dashboard AS
SELECT
    g.id,
    g.agent_id,
    g.circle_id,
    g.parent_id,
    g.depth,
    g.title,
    g.description,
    g.success_criteria,
    g.context,
    g.status,
    g.priority,
    g.progress_percent,
    g.status_message,
    g.deadline,
    g.estimated_hours,
    g.actual_hours,
    g.is_decomposed,
    g.decomposition_strategy,
    g.max_subgoals,
    g.background_task_id,
    g.last_worked_at,
    g.attempts,
    g.max_attempts,
    g.result_summary,
    g.artifacts,
    g.lessons_learned,
    g.tags,
    g.metadata,
    g.created_by,
    g.created_at,
    g.updated_at,
    g.started_at,
    g.completed_at,
    tree.path,
    tree.tree_depth,
    tree.ancestors,
    a.name                                   AS agent_name,
    COALESCE(a.display_name, p.display_name) AS agent_display_name,
    c.name                                   AS circle_name,
    sub.subgoal_count,
    sub.completed_subgoals,
    dep.dependency_count,
    dep.blocking_count
FROM agent.goals g
LEFT JOIN agent.agents a    ON a.id = g.agent_id
LEFT JOIN agent.personas p  ON p.id = a.persona_id
LEFT JOIN circle.circles c  ON c.id = g.circle_id
CROSS JOIN LATERAL (
    WITH RECURSIVE up (id, parent_id, title, lvl) AS (
        SELECT g.id, g.parent_id, g.title, 0
        UNION ALL
        SELECT pg.id, pg.parent_id, pg.title, up.lvl + 1
        FROM agent.goals pg
        JOIN up ON pg.id = up.parent_id
        WHERE up.lvl < 100          -- guard against a parent cycle
    )
    SELECT string_agg(up.title, ' > ' ORDER BY up.lvl DESC) AS path,
           count(*)::integer                                AS tree_depth,
           array_agg(up.id ORDER BY up.lvl DESC)            AS ancestors
    FROM up
) tree
CROSS JOIN LATERAL (
    SELECT count(*)                                     AS subgoal_count,
           count(*) FILTER (WHERE s.status = 'completed') AS completed_subgoals
    FROM agent.goals s
    WHERE s.parent_id = g.id
) sub
CROSS JOIN LATERAL (
    SELECT count(*) AS dependency_count,
           count(*) FILTER (WHERE d.dependency_type = 'blocks'
                              AND t.status NOT IN ('completed', 'cancelled')) AS blocking_count
    FROM agent.goal_dependencies d
    JOIN agent.goals t ON t.id = d.depends_on_id
    WHERE d.goal_id = g.id
) dep;

COMMENT ON VIEW public.goals_dashboard IS 'Goals with path/tree_depth/ancestors (root first), names and subgoal/dependency counts';
