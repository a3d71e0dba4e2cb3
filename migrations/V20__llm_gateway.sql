-- LLM gateway: provider settings stored through the edge (keys sealed with GATHERING_MASTER_KEY),
-- application/database settings of /settings, and the usage log of every gateway call.

-- ---------------------------------------------------------------------------
-- agent.provider_settings: what PATCH /settings/providers/{provider} stores. The key is sealed
-- (AES-256-GCM, nonce || ciphertext+tag, associated data 'provider:<name>'); it is never stored
-- or returned in clear. Any change is followed by NOTIFY llm_settings so gateways reload.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.provider_settings (
    provider        text PRIMARY KEY
                    CHECK (char_length(provider) BETWEEN 1 AND 50 AND provider = lower(provider)),
    api_key_sealed  bytea CHECK (api_key_sealed IS NULL OR octet_length(api_key_sealed) BETWEEN 29 AND 2048),
    default_model   text CHECK (default_model IS NULL OR char_length(default_model) BETWEEN 1 AND 100),
    base_url        text CHECK (base_url IS NULL OR (char_length(base_url) BETWEEN 8 AND 500
                                                     AND base_url ~ '^https?://')),
    key_updated_at  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent.provider_settings IS 'Provider keys (sealed), default models and base URLs set through /settings';

-- ---------------------------------------------------------------------------
-- agent.app_settings: PATCH /settings/application and /settings/database (one JSON row each).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.app_settings (
    name        text PRIMARY KEY CHECK (name IN ('application', 'database')),
    value       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(value) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent.app_settings IS 'Settings changed through /settings (application, database)';

-- ---------------------------------------------------------------------------
-- agent.llm_usage: one row per gateway call, written in batches by the gateway. Append-only;
-- agent_id is not a foreign key so that usage outlives deleted agents.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.llm_usage (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at           timestamptz NOT NULL DEFAULT now(),
    request_id           text NOT NULL CHECK (char_length(request_id) BETWEEN 1 AND 128),
    kind                 text NOT NULL CHECK (kind IN ('chat', 'embedding')),
    provider             text NOT NULL,
    model                text NOT NULL,
    caller_service       text,
    agent_id             bigint,
    user_id              text,
    status               text NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    error_kind           text,
    input_tokens         integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens        integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd             double precision CHECK (cost_usd IS NULL OR cost_usd >= 0),
    latency_ms           double precision NOT NULL CHECK (latency_ms >= 0),
    upstream_latency_ms  double precision CHECK (upstream_latency_ms IS NULL OR upstream_latency_ms >= 0),
    attempts             integer NOT NULL DEFAULT 1 CHECK (attempts >= 0),
    models_tried         integer NOT NULL DEFAULT 1 CHECK (models_tried >= 0),
    stream               boolean NOT NULL DEFAULT false,
    mock                 boolean NOT NULL DEFAULT false
);
-- Rows arrive in time order: a BRIN index serves time ranges at almost no write cost.
CREATE INDEX llm_usage_created_at_brin ON agent.llm_usage USING brin (created_at);
CREATE INDEX llm_usage_agent_created_idx ON agent.llm_usage (agent_id, created_at) WHERE agent_id IS NOT NULL;
COMMENT ON TABLE agent.llm_usage IS 'One row per LLM gateway call: tokens, cost (USD), latency, status, caller';
