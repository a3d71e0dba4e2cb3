-- GatheRing schema, part 4: communication, memory (pgvector), review and audit tables.
-- audit.security_events lives in V5 with the auth tables.

-- ===========================================================================
-- communication
-- ===========================================================================
CREATE TABLE communication.conversations (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id              bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    project_id             bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    task_id                bigint REFERENCES circle.tasks(id) ON DELETE SET NULL,
    topic                  text NOT NULL DEFAULT '',
    conversation_type      text NOT NULL DEFAULT 'chat',
    participant_agent_ids  bigint[] NOT NULL DEFAULT '{}',
    participant_names      text[] NOT NULL DEFAULT '{}',
    max_turns              integer NOT NULL DEFAULT 10 CHECK (max_turns > 0),
    turn_strategy          text NOT NULL DEFAULT 'round_robin'
                           CHECK (turn_strategy IN ('round_robin', 'mention_based', 'free_form', 'facilitator_led')),
    facilitator_agent_id   bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    initial_prompt         text NOT NULL DEFAULT '',
    status                 public.conversation_status NOT NULL DEFAULT 'pending',
    turns_taken            integer NOT NULL DEFAULT 0 CHECK (turns_taken >= 0),
    is_active              boolean NOT NULL DEFAULT true,
    summary                text,
    conclusion             text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    last_message_at        timestamptz
);
CREATE INDEX conversations_circle_id_idx ON communication.conversations (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX conversations_project_id_idx ON communication.conversations (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX conversations_task_id_idx ON communication.conversations (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX conversations_facilitator_idx ON communication.conversations (facilitator_agent_id)
    WHERE facilitator_agent_id IS NOT NULL;
CREATE INDEX conversations_status_idx ON communication.conversations (status) WHERE is_active;
CREATE INDEX conversations_created_at_idx ON communication.conversations (created_at DESC);
CREATE INDEX conversations_participants_idx ON communication.conversations USING gin (participant_agent_ids);
CREATE TRIGGER conversations_set_updated_at BEFORE UPDATE ON communication.conversations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- circle.tasks.conversation_id could not reference conversations in V3.
ALTER TABLE circle.tasks
    ADD CONSTRAINT tasks_conversation_id_fkey
    FOREIGN KEY (conversation_id) REFERENCES communication.conversations(id) ON DELETE SET NULL;

CREATE TABLE communication.messages (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id      bigint NOT NULL REFERENCES communication.conversations(id) ON DELETE CASCADE,
    role                 public.message_role NOT NULL,
    agent_id             bigint REFERENCES agent.agents(id) ON DELETE SET NULL,  -- NULL = the user
    agent_name           text,
    user_id              text,
    content              text NOT NULL,
    mentions             text[] NOT NULL DEFAULT '{}',
    mentioned_agent_ids  bigint[] NOT NULL DEFAULT '{}',
    tool_calls           jsonb,
    tool_results         jsonb,
    metadata             jsonb NOT NULL DEFAULT '{}',
    model_used           text,
    tokens_input         integer,
    tokens_output        integer,
    thinking_time_ms     integer,
    parent_message_id    bigint REFERENCES communication.messages(id) ON DELETE SET NULL,
    is_system            boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    edited_at            timestamptz
);
CREATE INDEX messages_conversation_created_idx ON communication.messages (conversation_id, created_at, id);
CREATE INDEX messages_agent_id_idx ON communication.messages (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX messages_parent_message_id_idx ON communication.messages (parent_message_id)
    WHERE parent_message_id IS NOT NULL;

CREATE TABLE communication.chat_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id       bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    session_id     bigint REFERENCES agent.sessions(id) ON DELETE SET NULL,
    role           public.message_role NOT NULL,
    content        text NOT NULL,
    user_id        text,
    model_used     text,
    tokens_input   integer,
    tokens_output  integer,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- GET /agents/{id}/history (last N, returned oldest first) and message counts.
CREATE INDEX chat_history_agent_created_idx ON communication.chat_history (agent_id, created_at DESC, id DESC);
CREATE INDEX chat_history_session_id_idx ON communication.chat_history (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE communication.notifications (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id           bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    notification_type  text NOT NULL,
    title              text NOT NULL,
    message            text,
    source_agent_id    bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    source_type        text,
    source_id          bigint,
    is_read            boolean NOT NULL DEFAULT false,
    is_dismissed       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    read_at            timestamptz
);
CREATE INDEX notifications_agent_created_idx ON communication.notifications (agent_id, created_at DESC);
CREATE INDEX notifications_unread_idx ON communication.notifications (agent_id) WHERE NOT is_read AND NOT is_dismissed;
CREATE INDEX notifications_source_agent_id_idx ON communication.notifications (source_agent_id)
    WHERE source_agent_id IS NOT NULL;

-- ===========================================================================
-- memory
-- ===========================================================================
CREATE TABLE memory.memories (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope             public.memory_scope NOT NULL DEFAULT 'agent',
    scope_id          bigint,  -- agent, circle or project id; NULL for global
    agent_id          bigint REFERENCES agent.agents(id) ON DELETE CASCADE,
    memory_type       public.memory_type NOT NULL DEFAULT 'fact',
    -- When inserted NULL or empty, a trigger sets key = 'auto_<id>'.
    key               text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
    value             text NOT NULL,
    source_type       text,
    source_id         bigint,
    tags              text[] NOT NULL DEFAULT '{}',
    extra_data        jsonb NOT NULL DEFAULT '{}',
    embedding         vector(1536),
    importance        double precision NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    access_count      integer NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    relevance_score   double precision NOT NULL DEFAULT 0,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_accessed_at  timestamptz,
    expires_at        timestamptz,
    CONSTRAINT memories_scope_id_check CHECK (scope = 'global' OR scope_id IS NOT NULL OR agent_id IS NOT NULL)
);
CREATE INDEX memories_agent_id_idx ON memory.memories (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX memories_agent_active_idx ON memory.memories (agent_id, created_at DESC) WHERE is_active;
CREATE INDEX memories_scope_idx ON memory.memories (scope, scope_id) WHERE is_active;
CREATE INDEX memories_type_idx ON memory.memories (memory_type);
CREATE INDEX memories_tags_idx ON memory.memories USING gin (tags);
CREATE INDEX memories_expires_at_idx ON memory.memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_embedding_hnsw_idx ON memory.memories USING hnsw (embedding vector_cosine_ops);
CREATE INDEX memories_value_trgm_idx ON memory.memories USING gin (value gin_trgm_ops);

CREATE FUNCTION memory.default_memory_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key IS NULL OR NEW.key = '' THEN
        NEW.key := 'auto_' || NEW.id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER memories_default_key BEFORE INSERT ON memory.memories
    FOR EACH ROW EXECUTE FUNCTION memory.default_memory_key();
CREATE TRIGGER memories_set_updated_at BEFORE UPDATE ON memory.memories
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE memory.memories IS 'Long-term memories with 1536-dim embeddings (cosine HNSW) and trigram fallback';

CREATE TABLE memory.knowledge_base (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title            text NOT NULL,
    content          text NOT NULL,
    category         text,
    project_id       bigint REFERENCES project.projects(id) ON DELETE CASCADE,
    circle_id        bigint REFERENCES circle.circles(id) ON DELETE CASCADE,
    is_global        boolean NOT NULL DEFAULT false,
    tags             text[] NOT NULL DEFAULT '{}',
    source_url       text,
    author_agent_id  bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    -- Chunks of an uploaded document point at the main entry (also tagged doc:<id> per contract).
    parent_id        bigint REFERENCES memory.knowledge_base(id) ON DELETE CASCADE,
    chunk_index      integer CHECK (chunk_index IS NULL OR chunk_index >= 0),
    embedding        vector(1536),
    quality_score    double precision NOT NULL DEFAULT 0.5,
    upvotes          integer NOT NULL DEFAULT 0,
    downvotes        integer NOT NULL DEFAULT 0,
    is_verified      boolean NOT NULL DEFAULT false,
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_base_project_id_idx ON memory.knowledge_base (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX knowledge_base_circle_id_idx ON memory.knowledge_base (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX knowledge_base_author_agent_id_idx ON memory.knowledge_base (author_agent_id)
    WHERE author_agent_id IS NOT NULL;
CREATE INDEX knowledge_base_parent_id_idx ON memory.knowledge_base (parent_id, chunk_index) WHERE parent_id IS NOT NULL;
CREATE INDEX knowledge_base_global_idx ON memory.knowledge_base (id) WHERE is_global AND is_active;
CREATE INDEX knowledge_base_category_created_idx ON memory.knowledge_base (category, created_at DESC) WHERE is_active;
CREATE INDEX knowledge_base_created_at_idx ON memory.knowledge_base (created_at DESC) WHERE is_active;
CREATE INDEX knowledge_base_tags_idx ON memory.knowledge_base USING gin (tags);
CREATE INDEX knowledge_base_embedding_hnsw_idx ON memory.knowledge_base USING hnsw (embedding vector_cosine_ops);
CREATE INDEX knowledge_base_content_trgm_idx ON memory.knowledge_base USING gin (content gin_trgm_ops);
CREATE INDEX knowledge_base_title_trgm_idx ON memory.knowledge_base USING gin (title gin_trgm_ops);
CREATE TRIGGER knowledge_base_set_updated_at BEFORE UPDATE ON memory.knowledge_base
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE memory.knowledge_base IS 'Shared knowledge base (docs|best_practice|decision|faq) with embeddings';

-- Embedding cache. Dimension-free vector so 3072-dim models (text-embedding-3-large) fit too;
-- no ANN index is needed for an exact-hash cache.
CREATE TABLE memory.embeddings_cache (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash     text NOT NULL UNIQUE,  -- sha256 hex of "<model>:<text>"
    content_preview  text,
    embedding        vector NOT NULL,
    model            text NOT NULL,
    dimension        integer NOT NULL CHECK (dimension > 0),
    usage_count      integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_used_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT embeddings_cache_embedding_dims_check CHECK (vector_dims(embedding) = dimension)
);
CREATE INDEX embeddings_cache_last_used_idx ON memory.embeddings_cache (last_used_at);

CREATE TABLE memory.context_snapshots (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id          bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    session_id        bigint REFERENCES agent.sessions(id) ON DELETE CASCADE,
    reason            text NOT NULL,  -- compaction | session_end | manual
    summary           text NOT NULL,
    key_points        text[] NOT NULL DEFAULT '{}',
    decisions         text[] NOT NULL DEFAULT '{}',
    message_count     integer,
    token_count       integer,
    start_message_id  bigint,
    end_message_id    bigint,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX context_snapshots_agent_created_idx ON memory.context_snapshots (agent_id, created_at DESC);
CREATE INDEX context_snapshots_session_id_idx ON memory.context_snapshots (session_id) WHERE session_id IS NOT NULL;

-- Similarity search helpers: similarity = 1 - cosine distance, ordered by distance (HNSW-friendly).
CREATE FUNCTION memory.search_similar_memories(
    query_embedding vector(1536),
    p_agent_id bigint DEFAULT NULL,
    p_scope public.memory_scope DEFAULT NULL,
    p_limit integer DEFAULT 10,
    p_threshold double precision DEFAULT 0.7
)
RETURNS TABLE (memory_id bigint, key text, value text, memory_type public.memory_type,
               importance double precision, similarity double precision)
LANGUAGE sql STABLE AS $$
    SELECT m.id, m.key, m.value, m.memory_type, m.importance,
           1 - (m.embedding <=> query_embedding) AS similarity
    FROM memory.memories m
    WHERE m.is_active
      AND m.embedding IS NOT NULL
      AND (p_agent_id IS NULL OR m.agent_id = p_agent_id)
      AND (p_scope IS NULL OR m.scope = p_scope)
      AND 1 - (m.embedding <=> query_embedding) >= p_threshold
    ORDER BY m.embedding <=> query_embedding
    LIMIT p_limit
$$;

CREATE FUNCTION memory.search_knowledge_base(
    query_embedding vector(1536),
    p_project_id bigint DEFAULT NULL,
    p_circle_id bigint DEFAULT NULL,
    p_category text DEFAULT NULL,
    p_include_global boolean DEFAULT true,
    p_limit integer DEFAULT 10,
    p_threshold double precision DEFAULT 0.7
)
RETURNS TABLE (kb_id bigint, title text, content text, category text, tags text[],
               similarity double precision)
LANGUAGE sql STABLE AS $$
    SELECT kb.id, kb.title, kb.content, kb.category, kb.tags,
           1 - (kb.embedding <=> query_embedding) AS similarity
    FROM memory.knowledge_base kb
    WHERE kb.is_active
      AND kb.embedding IS NOT NULL
      AND (p_project_id IS NULL OR kb.project_id = p_project_id OR (p_include_global AND kb.is_global))
      AND (p_circle_id IS NULL OR kb.circle_id = p_circle_id OR (p_include_global AND kb.is_global))
      AND (p_category IS NULL OR kb.category = p_category)
      AND 1 - (kb.embedding <=> query_embedding) >= p_threshold
    ORDER BY kb.embedding <=> query_embedding
    LIMIT p_limit
$$;

-- ===========================================================================
-- review (no API use; kept for circle review persistence)
-- ===========================================================================
CREATE TABLE review.reviews (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id                bigint NOT NULL REFERENCES circle.tasks(id) ON DELETE CASCADE,
    project_id             bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    circle_id              bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    author_id              bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    reviewer_id            bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    review_type            public.review_type NOT NULL DEFAULT 'quality',
    status                 public.review_status NOT NULL DEFAULT 'pending',
    overall_score          integer CHECK (overall_score IS NULL OR overall_score BETWEEN 0 AND 100),
    scores                 jsonb NOT NULL DEFAULT '{}',
    summary                text,
    feedback               text,
    suggestions            jsonb NOT NULL DEFAULT '[]',
    issues                 jsonb NOT NULL DEFAULT '[]',
    blocking_issues_count  integer NOT NULL DEFAULT 0,
    changes_requested      jsonb NOT NULL DEFAULT '[]',
    changes_addressed      boolean NOT NULL DEFAULT false,
    iteration              integer NOT NULL DEFAULT 1,
    previous_review_id     bigint REFERENCES review.reviews(id) ON DELETE SET NULL,
    files_reviewed         text[] NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    CONSTRAINT reviews_no_self_review CHECK (author_id <> reviewer_id)
);
CREATE INDEX reviews_task_id_idx ON review.reviews (task_id);
CREATE INDEX reviews_author_id_idx ON review.reviews (author_id);
CREATE INDEX reviews_reviewer_id_idx ON review.reviews (reviewer_id);
CREATE INDEX reviews_project_id_idx ON review.reviews (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX reviews_circle_id_idx ON review.reviews (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX reviews_previous_review_id_idx ON review.reviews (previous_review_id) WHERE previous_review_id IS NOT NULL;
CREATE INDEX reviews_open_idx ON review.reviews (status) WHERE status NOT IN ('approved', 'rejected');
CREATE TRIGGER reviews_set_updated_at BEFORE UPDATE ON review.reviews
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TABLE review.comments (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    review_id        bigint NOT NULL REFERENCES review.reviews(id) ON DELETE CASCADE,
    author_id        bigint NOT NULL REFERENCES agent.agents(id) ON DELETE CASCADE,
    file_path        text,
    line_start       integer,
    line_end         integer,
    code_snippet     text,
    comment          text NOT NULL,
    severity         text NOT NULL DEFAULT 'suggestion'
                     CHECK (severity IN ('suggestion', 'warning', 'error', 'blocking')),
    suggested_code   text,
    is_resolved      boolean NOT NULL DEFAULT false,
    resolution_note  text,
    resolved_by_id   bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz
);
CREATE INDEX comments_review_id_idx ON review.comments (review_id);
CREATE INDEX comments_author_id_idx ON review.comments (author_id);
CREATE INDEX comments_resolved_by_id_idx ON review.comments (resolved_by_id) WHERE resolved_by_id IS NOT NULL;

CREATE TABLE review.quality_metrics (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id      bigint REFERENCES agent.agents(id) ON DELETE CASCADE,
    project_id    bigint REFERENCES project.projects(id) ON DELETE CASCADE,
    circle_id     bigint REFERENCES circle.circles(id) ON DELETE CASCADE,
    metric_type   text NOT NULL,
    value         double precision NOT NULL,
    unit          text,
    metric_data   jsonb NOT NULL DEFAULT '{}',
    period_type   text NOT NULL DEFAULT 'daily',
    period_start  timestamptz,
    period_end    timestamptz,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_metrics_agent_idx ON review.quality_metrics (agent_id, recorded_at DESC) WHERE agent_id IS NOT NULL;
CREATE INDEX quality_metrics_project_idx ON review.quality_metrics (project_id, recorded_at DESC) WHERE project_id IS NOT NULL;
CREATE INDEX quality_metrics_circle_idx ON review.quality_metrics (circle_id, recorded_at DESC) WHERE circle_id IS NOT NULL;
CREATE INDEX quality_metrics_type_idx ON review.quality_metrics (metric_type);

CREATE TABLE review.standards (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id             bigint REFERENCES project.projects(id) ON DELETE CASCADE,
    circle_id              bigint REFERENCES circle.circles(id) ON DELETE CASCADE,
    is_global              boolean NOT NULL DEFAULT false,
    name                   text NOT NULL,
    category               text NOT NULL,
    description            text,
    rules                  jsonb NOT NULL DEFAULT '[]',
    severity               text NOT NULL DEFAULT 'warning',
    min_score              integer,
    required_for_approval  boolean NOT NULL DEFAULT false,
    is_active              boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX standards_project_id_idx ON review.standards (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX standards_circle_id_idx ON review.standards (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX standards_category_idx ON review.standards (category);
CREATE TRIGGER standards_set_updated_at BEFORE UPDATE ON review.standards
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- ===========================================================================
-- audit (no API use except security_events, which is in V5)
-- ===========================================================================
CREATE TABLE audit.logs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id         bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    user_id          text,
    category         text NOT NULL,
    action           text NOT NULL,
    resource_type    text,
    resource_id      bigint,
    level            public.log_level NOT NULL DEFAULT 'info',
    message          text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    circle_id        bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    project_id       bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    task_id          bigint REFERENCES circle.tasks(id) ON DELETE SET NULL,
    review_id        bigint REFERENCES review.reviews(id) ON DELETE SET NULL,
    conversation_id  bigint REFERENCES communication.conversations(id) ON DELETE SET NULL,
    session_id       bigint REFERENCES agent.sessions(id) ON DELETE SET NULL,
    request_id       text,
    ip_address       inet,
    user_agent       text,
    duration_ms      integer,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_created_at_idx ON audit.logs (created_at DESC);
CREATE INDEX logs_category_idx ON audit.logs (category);
CREATE INDEX logs_level_idx ON audit.logs (level) WHERE level IN ('warning', 'error', 'critical');
CREATE INDEX logs_resource_idx ON audit.logs (resource_type, resource_id) WHERE resource_id IS NOT NULL;
CREATE INDEX logs_request_id_idx ON audit.logs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX logs_agent_id_idx ON audit.logs (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX logs_circle_id_idx ON audit.logs (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX logs_project_id_idx ON audit.logs (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX logs_task_id_idx ON audit.logs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX logs_review_id_idx ON audit.logs (review_id) WHERE review_id IS NOT NULL;
CREATE INDEX logs_conversation_id_idx ON audit.logs (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX logs_session_id_idx ON audit.logs (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE audit.escalations (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    escalation_type      text NOT NULL,
    circle_id            bigint REFERENCES circle.circles(id) ON DELETE SET NULL,
    project_id           bigint REFERENCES project.projects(id) ON DELETE SET NULL,
    task_id              bigint REFERENCES circle.tasks(id) ON DELETE SET NULL,
    review_id            bigint REFERENCES review.reviews(id) ON DELETE SET NULL,
    agent_id             bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    title                text NOT NULL,
    description          text NOT NULL,
    context              jsonb NOT NULL DEFAULT '{}',
    priority             integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    severity             text NOT NULL DEFAULT 'medium' CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status               text NOT NULL DEFAULT 'open',
    assigned_to_user_id  text,
    resolution           text,
    resolution_type      text,
    resolved_by_user_id  text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    acknowledged_at      timestamptz,
    resolved_at          timestamptz,
    due_at               timestamptz
);
CREATE INDEX escalations_open_idx ON audit.escalations (priority, created_at) WHERE status NOT IN ('resolved', 'dismissed');
CREATE INDEX escalations_circle_id_idx ON audit.escalations (circle_id) WHERE circle_id IS NOT NULL;
CREATE INDEX escalations_project_id_idx ON audit.escalations (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX escalations_task_id_idx ON audit.escalations (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX escalations_review_id_idx ON audit.escalations (review_id) WHERE review_id IS NOT NULL;
CREATE INDEX escalations_agent_id_idx ON audit.escalations (agent_id) WHERE agent_id IS NOT NULL;
CREATE TRIGGER escalations_set_updated_at BEFORE UPDATE ON audit.escalations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TABLE audit.system_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type     text NOT NULL,
    component      text,
    level          public.log_level NOT NULL DEFAULT 'info',
    message        text NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}',
    error_type     text,
    error_message  text,
    stack_trace    text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_events_created_at_idx ON audit.system_events (created_at DESC);
CREATE INDEX system_events_type_idx ON audit.system_events (event_type);
CREATE INDEX system_events_level_idx ON audit.system_events (level) WHERE level IN ('error', 'critical');

CREATE TABLE audit.api_requests (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id           text NOT NULL,
    method               text NOT NULL,
    path                 text NOT NULL,
    query_params         jsonb,
    status_code          integer,
    response_time_ms     integer,
    response_size_bytes  integer,
    user_id              text,
    agent_id             bigint REFERENCES agent.agents(id) ON DELETE SET NULL,
    ip_address           inet,
    user_agent           text,
    error_message        text,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_requests_created_at_idx ON audit.api_requests (created_at DESC);
CREATE INDEX api_requests_path_idx ON audit.api_requests (path);
CREATE INDEX api_requests_user_id_idx ON audit.api_requests (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX api_requests_agent_id_idx ON audit.api_requests (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX api_requests_errors_idx ON audit.api_requests (status_code) WHERE status_code >= 400;
