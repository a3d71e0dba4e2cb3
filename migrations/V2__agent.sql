-- GatheRing schema, part 2: the agent schema (providers, models, personas, agents, sessions,
-- skills, per-agent tools). Goals live in schema agent too but are created in V3, because they
-- reference circles and background tasks.

-- ---------------------------------------------------------------------------
-- agent.providers: LLM providers. Names are stored lower-case (POST /providers lower-cases).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.providers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CHECK (char_length(name) BETWEEN 1 AND 50 AND name = lower(name)),
    api_base_url  text,
    -- Wire protocol the llm-gateway speaks to this provider (upstream code read a column named
    -- api_type that no migration created). OpenAI-compatible is the default for new providers.
    api_type      text NOT NULL DEFAULT 'openai'
                  CHECK (api_type IN ('anthropic', 'openai', 'ollama', 'gemini')),
    is_local      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent.providers IS 'LLM providers (anthropic, openai, deepseek, ollama, ...)';

-- ---------------------------------------------------------------------------
-- agent.models: model catalogue with prices in USD per million tokens.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.models (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_id          bigint NOT NULL REFERENCES agent.providers(id) ON DELETE CASCADE,
    model_name           text NOT NULL CHECK (char_length(model_name) BETWEEN 1 AND 100),
    model_alias          text CHECK (model_alias IS NULL OR char_length(model_alias) BETWEEN 1 AND 100),
    model_type           text NOT NULL DEFAULT 'chat' CHECK (model_type IN ('chat', 'embedding')),
    embedding_dimensions integer CHECK (embedding_dimensions IS NULL OR embedding_dimensions > 0),
    pricing_in           numeric(12, 6) CHECK (pricing_in IS NULL OR pricing_in >= 0),
    pricing_out          numeric(12, 6) CHECK (pricing_out IS NULL OR pricing_out >= 0),
    pricing_cache_read   numeric(12, 6) CHECK (pricing_cache_read IS NULL OR pricing_cache_read >= 0),
    pricing_cache_write  numeric(12, 6) CHECK (pricing_cache_write IS NULL OR pricing_cache_write >= 0),
    extended_thinking    boolean NOT NULL DEFAULT false,
    vision               boolean NOT NULL DEFAULT false,
    function_calling     boolean NOT NULL DEFAULT true,
    streaming            boolean NOT NULL DEFAULT true,
    context_window       integer CHECK (context_window IS NULL OR context_window > 0),
    max_output           integer CHECK (max_output IS NULL OR max_output > 0),
    release_date         date,
    is_deprecated        boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT models_provider_model_name_key UNIQUE (provider_id, model_name)
);
-- model_alias is what agents/dashboards show as "model": unique when present.
CREATE UNIQUE INDEX models_model_alias_key ON agent.models (model_alias) WHERE model_alias IS NOT NULL;
CREATE INDEX models_active_idx ON agent.models (provider_id) WHERE NOT is_deprecated;
CREATE TRIGGER models_set_updated_at BEFORE UPDATE ON agent.models
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.models IS 'LLM models: prices in USD per 1M tokens, capabilities, limits';
COMMENT ON COLUMN agent.models.model_name IS 'Name sent to the provider API';
COMMENT ON COLUMN agent.models.model_alias IS 'Short unique alias shown as "model" (e.g. claude-sonnet-4)';

-- ---------------------------------------------------------------------------
-- agent.personas: reusable persona templates.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.personas (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    display_name         text NOT NULL UNIQUE CHECK (char_length(display_name) BETWEEN 1 AND 200),
    role                 text NOT NULL,
    base_prompt          text NOT NULL,
    full_prompt          text,
    traits               text[] NOT NULL DEFAULT '{}',
    communication_style  text NOT NULL DEFAULT 'balanced',
    specializations      text[] NOT NULL DEFAULT '{}',
    languages            text[] NOT NULL DEFAULT '{fr,en}',
    work_ethic           text[] NOT NULL DEFAULT '{}',
    motto                text,
    collaboration_notes  text,
    description          text,
    icon                 text,
    is_builtin           boolean NOT NULL DEFAULT false,
    default_model_id     bigint REFERENCES agent.models(id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personas_default_model_id_idx ON agent.personas (default_model_id) WHERE default_model_id IS NOT NULL;
CREATE TRIGGER personas_set_updated_at BEFORE UPDATE ON agent.personas
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.personas IS 'Persona templates (prompt, traits, style); builtin ones cannot be deleted';

-- ---------------------------------------------------------------------------
-- agent.agents: persisted agents. The provider is derived through model_id -> models -> providers.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.agents (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text NOT NULL CHECK (char_length(name) <= 100),
    display_name           text,
    persona_id             bigint REFERENCES agent.personas(id) ON DELETE SET NULL,
    model_id               bigint REFERENCES agent.models(id) ON DELETE SET NULL,
    -- Role override; when NULL the persona's role applies.
    role                   text,
    competencies           text[] NOT NULL DEFAULT '{}',
    can_review             text[] NOT NULL DEFAULT '{}',
    review_strictness      double precision NOT NULL DEFAULT 0.7
                           CHECK (review_strictness BETWEEN 0 AND 1),
    temperature            double precision NOT NULL DEFAULT 0.7 CHECK (temperature BETWEEN 0 AND 2),
    max_tokens             integer CHECK (max_tokens IS NULL OR max_tokens > 0),
    skill_names            text[] NOT NULL DEFAULT '{}',
    tasks_completed        integer NOT NULL DEFAULT 0 CHECK (tasks_completed >= 0),
    reviews_done           integer NOT NULL DEFAULT 0 CHECK (reviews_done >= 0),
    approval_rate          double precision NOT NULL DEFAULT 0 CHECK (approval_rate BETWEEN 0 AND 1),
    average_quality_score  double precision NOT NULL DEFAULT 0
                           CHECK (average_quality_score BETWEEN 0 AND 100),
    is_active              boolean NOT NULL DEFAULT true,
    status                 text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy', 'offline')),
    last_active_at         timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_persona_id_idx ON agent.agents (persona_id) WHERE persona_id IS NOT NULL;
CREATE INDEX agents_model_id_idx ON agent.agents (model_id) WHERE model_id IS NOT NULL;
CREATE INDEX agents_active_status_idx ON agent.agents (status) WHERE is_active;
CREATE TRIGGER agents_set_updated_at BEFORE UPDATE ON agent.agents
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.agents IS 'AI agents: persona + model + tuning + stats';
COMMENT ON COLUMN agent.agents.skill_names IS 'Configured skill names (GET/PUT /agents/{id}/skills)';

-- ---------------------------------------------------------------------------
-- agent.sessions: working state of an agent (files, pending actions, current task, recent window).
-- project_id gets its foreign key in V3 (project.projects does not exist yet).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.sessions (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id               bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    session_token          text UNIQUE,
    project_id             bigint,
    working_files          text[] NOT NULL DEFAULT '{}',
    pending_actions        text[] NOT NULL DEFAULT '{}',
    completed_actions      text[] NOT NULL DEFAULT '{}',
    recent_messages        jsonb NOT NULL DEFAULT '[]',
    last_message           text,
    last_response          text,
    -- Opaque task reference (circle task, background task or goal id as text).
    current_task_id        text,
    current_task_title     text,
    current_task_progress  text,
    context_window_start   integer NOT NULL DEFAULT 0,
    total_messages         integer NOT NULL DEFAULT 0,
    needs_resume           boolean NOT NULL DEFAULT false,
    resume_reason          text,
    started_at             timestamptz NOT NULL DEFAULT now(),
    last_activity_at       timestamptz NOT NULL DEFAULT now(),
    ended_at               timestamptz
);
-- At most one open session per agent (upsert target: ON CONFLICT (agent_id) WHERE ended_at IS NULL).
CREATE UNIQUE INDEX sessions_open_agent_key ON agent.sessions (agent_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_agent_started_idx ON agent.sessions (agent_id, started_at DESC);
CREATE INDEX sessions_project_id_idx ON agent.sessions (project_id) WHERE project_id IS NOT NULL;
COMMENT ON TABLE agent.sessions IS 'Agent session state; one open (ended_at IS NULL) session per agent';

-- ---------------------------------------------------------------------------
-- agent.skills: skill catalogue (seeded in V9).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.skills (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 50),
    display_name          text,
    description           text,
    category              text NOT NULL DEFAULT 'general',
    required_permissions  text[] NOT NULL DEFAULT '{}'
                          CHECK (required_permissions <@ ARRAY['read', 'write', 'execute', 'delete',
                                                              'network', 'git', 'deploy', 'admin']::text[]),
    version               text NOT NULL DEFAULT '1.0.0',
    is_dangerous          boolean NOT NULL DEFAULT false,
    is_enabled            boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX skills_category_idx ON agent.skills (category);
CREATE TRIGGER skills_set_updated_at BEFORE UPDATE ON agent.skills
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.skills IS 'Skill catalogue; is_enabled is the global switch';

-- ---------------------------------------------------------------------------
-- agent.agent_tools: per-agent skill enablement.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.agent_tools (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id      bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    skill_id      bigint NOT NULL REFERENCES agent.skills(id) ON DELETE CASCADE,
    is_enabled    boolean NOT NULL DEFAULT true,
    config        jsonb NOT NULL DEFAULT '{}',
    usage_count   integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_tools_agent_skill_key UNIQUE (agent_id, skill_id)
);
CREATE INDEX agent_tools_skill_id_idx ON agent.agent_tools (skill_id);
CREATE TRIGGER agent_tools_set_updated_at BEFORE UPDATE ON agent.agent_tools
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.agent_tools IS 'Skills enabled/disabled per agent, with usage counters';
