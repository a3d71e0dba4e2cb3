-- LLM gateway for teams: virtual keys of the OpenAI-compatible HTTP API, team budgets, spend
-- per period, per-key rate-limit windows and the response cache. The gateway owns every table
-- here (the edge's admin routes call its gRPC API); see docs/gateway.md.

-- ---------------------------------------------------------------------------
-- agent.gateway_teams: a budget shared by every key of a team. A key may name a team that has
-- no row here (no team budget).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.gateway_teams (
    name           text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    budget_usd     double precision
                   CHECK (budget_usd IS NULL OR (budget_usd > 0 AND budget_usd <= 1e9)),
    budget_period  text CHECK (budget_period IN ('daily', 'monthly')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((budget_usd IS NULL) = (budget_period IS NULL))
);
COMMENT ON TABLE agent.gateway_teams IS 'Team budgets of the LLM gateway (USD per day or month)';

-- ---------------------------------------------------------------------------
-- agent.gateway_keys: virtual keys. Only the SHA-256 of a key is stored (the key itself is
-- shown once, in the answer that created or rotated it); key_hint identifies it in lists.
-- Keys are revoked, never deleted, so usage rows keep naming them.
-- ---------------------------------------------------------------------------
CREATE TABLE agent.gateway_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    owner          text CHECK (owner IS NULL OR char_length(owner) BETWEEN 1 AND 200),
    team           text CHECK (team IS NULL OR team ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    key_hash       bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    key_hint       text NOT NULL CHECK (char_length(key_hint) BETWEEN 1 AND 40),
    models         text[] NOT NULL DEFAULT '{*}' CHECK (cardinality(models) BETWEEN 1 AND 64),
    expires_at     timestamptz,
    budget_usd     double precision
                   CHECK (budget_usd IS NULL OR (budget_usd > 0 AND budget_usd <= 1e9)),
    budget_period  text CHECK (budget_period IN ('daily', 'monthly')),
    rpm            integer CHECK (rpm IS NULL OR rpm > 0),
    tpm            integer CHECK (tpm IS NULL OR tpm > 0),
    created_by     text CHECK (created_by IS NULL OR char_length(created_by) <= 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at     timestamptz,
    revoked_at     timestamptz,
    CHECK ((budget_usd IS NULL) = (budget_period IS NULL))
);
CREATE INDEX gateway_keys_team_idx ON agent.gateway_keys (team) WHERE team IS NOT NULL;
COMMENT ON TABLE agent.gateway_keys IS
    'Virtual keys of the LLM gateway HTTP API: SHA-256 of the key, allowed models, expiry, budget, limits';

-- Any change to keys or teams wakes every gateway, which reloads its key snapshot (revocation
-- applies everywhere within milliseconds); the notification commits with the change.
CREATE FUNCTION agent.notify_llm_keys() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('llm_keys', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
CREATE TRIGGER gateway_keys_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent.gateway_keys
    FOR EACH STATEMENT EXECUTE FUNCTION agent.notify_llm_keys();
CREATE TRIGGER gateway_teams_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agent.gateway_teams
    FOR EACH STATEMENT EXECUTE FUNCTION agent.notify_llm_keys();

-- ---------------------------------------------------------------------------
-- Usage rows say which key and team made the call, and whether the cache answered it.
-- ---------------------------------------------------------------------------
ALTER TABLE agent.llm_usage
    ADD COLUMN key_id bigint,
    ADD COLUMN team text,
    ADD COLUMN cached boolean NOT NULL DEFAULT false;
CREATE INDEX llm_usage_key_created_idx ON agent.llm_usage (key_id, created_at)
    WHERE key_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- agent.gateway_spend: spend per key and team per UTC day and month, upserted by the usage
-- writer in the same statement that inserts its batch of usage rows (so the sums equal the
-- usage rows: nothing lost, nothing counted twice, whichever gateway writes).
-- ---------------------------------------------------------------------------
CREATE TABLE agent.gateway_spend (
    scope         text NOT NULL CHECK (scope IN ('key', 'team')),
    subject       text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 64),
    period        text NOT NULL CHECK (period IN ('day', 'month')),
    period_start  date NOT NULL,
    cost_usd      double precision NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    requests      bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject, period, period_start)
);
COMMENT ON TABLE agent.gateway_spend IS
    'LLM spend (USD) per gateway key and team per UTC day and month, kept with the usage rows';

-- ---------------------------------------------------------------------------
-- agent.gateway_rate: requests and tokens per key per one-minute window (unix minute), shared
-- by every gateway. `granted` is scratch space of the claim statement (how many requests the
-- last claim obtained). Unlogged: worthless after a crash, and unlogged writes skip the WAL.
-- ---------------------------------------------------------------------------
CREATE UNLOGGED TABLE agent.gateway_rate (
    key_id        bigint NOT NULL,
    window_start  bigint NOT NULL,
    requests      bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    tokens        bigint NOT NULL DEFAULT 0,
    granted       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, window_start)
);
COMMENT ON TABLE agent.gateway_rate IS
    'Per-key requests and tokens per minute, shared by every LLM gateway';

-- ---------------------------------------------------------------------------
-- agent.gateway_cache: exact-match answers of deterministic chat requests. `key` is the
-- SHA-256 of the normalised request, the resolved models and the caller's scope (team or key);
-- `body` is the answer as JSON. Bounded by a TTL and a total size the gateways enforce.
-- Unlogged: a cache may be lost in a crash.
-- ---------------------------------------------------------------------------
CREATE UNLOGGED TABLE agent.gateway_cache (
    key         bytea PRIMARY KEY CHECK (octet_length(key) = 32),
    model       text NOT NULL,
    body        bytea NOT NULL,
    size_bytes  integer NOT NULL CHECK (size_bytes >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX gateway_cache_created_idx ON agent.gateway_cache (created_at);
COMMENT ON TABLE agent.gateway_cache IS 'LLM gateway response cache (exact match, TTL, size-bounded)';
