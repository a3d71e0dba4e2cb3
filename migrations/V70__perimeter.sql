-- Perimeter: keys bound to where they were configured, catalogue changes announced to every
-- gateway at once, and rate-limit counters shared by every edge.

-- ---------------------------------------------------------------------------
-- A stored provider key is sent only to the base URL it was stored for. The gateway writes
-- this column when it stores a key (the effective base URL at that moment); a later change of
-- the provider's URL leaves the key unused until an admin enters it again for the new host.
-- Keys stored before this migration are bound to the URL they were being sent to.
-- ---------------------------------------------------------------------------
ALTER TABLE agent.provider_settings
    ADD COLUMN key_base_url text
        CHECK (key_base_url IS NULL OR (char_length(key_base_url) BETWEEN 8 AND 500
                                        AND key_base_url ~ '^https?://'));
COMMENT ON COLUMN agent.provider_settings.key_base_url IS
    'The only base URL the stored key may be sent to (set by the gateway when the key is stored)';

UPDATE agent.provider_settings s
SET key_base_url = rtrim(COALESCE(
        s.base_url,
        (SELECT p.api_base_url FROM agent.providers p WHERE p.name = s.provider),
        CASE s.provider
            WHEN 'openai' THEN 'https://api.openai.com/v1'
            WHEN 'anthropic' THEN 'https://api.anthropic.com'
            WHEN 'deepseek' THEN 'https://api.deepseek.com/v1'
            WHEN 'mistral' THEN 'https://api.mistral.ai/v1'
        END), '/')
WHERE s.api_key_sealed IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Any change to providers, models or stored provider settings wakes every gateway (it reloads
-- its registry), whoever made it: the notification commits with the change.
-- ---------------------------------------------------------------------------
CREATE FUNCTION agent.notify_llm_settings() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('llm_settings', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER providers_notify_llm_settings
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent.providers
    FOR EACH STATEMENT EXECUTE FUNCTION agent.notify_llm_settings();
CREATE TRIGGER models_notify_llm_settings
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent.models
    FOR EACH STATEMENT EXECUTE FUNCTION agent.notify_llm_settings();
CREATE TRIGGER provider_settings_notify_llm_settings
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent.provider_settings
    FOR EACH STATEMENT EXECUTE FUNCTION agent.notify_llm_settings();

-- ---------------------------------------------------------------------------
-- edge.rate_limits: fixed one-minute windows of the low-rate tiers (auth, write), counted here
-- so that any number of edges together allow the contract's limits per client. Unlogged: the
-- counters are worth nothing after a crash, and unlogged writes skip the WAL.
-- ---------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS edge;
CREATE UNLOGGED TABLE edge.rate_limits (
    bucket        text NOT NULL CHECK (char_length(bucket) BETWEEN 1 AND 300),
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL DEFAULT 1,
    PRIMARY KEY (bucket, window_start)
);
COMMENT ON TABLE edge.rate_limits IS
    'Requests per client, route and tier in one-minute windows (auth and write tiers), shared by all edges';
