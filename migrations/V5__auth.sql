-- GatheRing schema, part 5: authentication state (users, revocations, refresh-token families,
-- signing keys, login throttling) and the security audit trail.
--
-- user ids on the wire are auth.users.external_id (uuid text) or the literal 'admin' (the env
-- bootstrap admin, which has no row): columns holding a user id are therefore text without FK.

-- ---------------------------------------------------------------------------
-- auth.users
-- ---------------------------------------------------------------------------
CREATE TABLE auth.users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id          text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text
                         CHECK (char_length(external_id) BETWEEN 1 AND 36),
    email                text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 255),
    email_lower          text GENERATED ALWAYS AS (lower(email)) STORED,
    name                 text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- PHC string: argon2id (~100 chars) or a legacy bcrypt $2b$ hash, re-hashed on login.
    password_hash        text NOT NULL,
    role                 text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    is_active            boolean NOT NULL DEFAULT true,
    password_changed_at  timestamptz DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON auth.users (email_lower);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE auth.users IS 'User accounts; login looks up email_lower';

-- ---------------------------------------------------------------------------
-- auth.token_blacklist: revoked access tokens (jti or token hash) until they expire.
-- ---------------------------------------------------------------------------
CREATE TABLE auth.token_blacklist (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    blacklisted_at  timestamptz NOT NULL DEFAULT now(),
    user_id         text,
    reason          text NOT NULL DEFAULT 'logout'
);
-- Live-set load (expires_at > now()) and purge of expired rows.
CREATE INDEX token_blacklist_expires_at_idx ON auth.token_blacklist (expires_at);
CREATE INDEX token_blacklist_user_id_idx ON auth.token_blacklist (user_id) WHERE user_id IS NOT NULL;
COMMENT ON TABLE auth.token_blacklist IS 'Revoked access tokens (jti or hash), kept until expires_at';

-- ---------------------------------------------------------------------------
-- auth.signing_keys: JWT signing keys; private keys sealed with AES-256-GCM (GATHERING_MASTER_KEY).
-- ---------------------------------------------------------------------------
CREATE TABLE auth.signing_keys (
    kid                 text PRIMARY KEY CHECK (char_length(kid) BETWEEN 1 AND 128),
    algorithm           text NOT NULL DEFAULT 'EdDSA',
    public_key          bytea NOT NULL,
    private_key_sealed  bytea NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,   -- starts signing at this time
    retires_at          timestamptz,   -- stops signing (still verifies) at this time
    expires_at          timestamptz,   -- no longer verifies after this time
    CONSTRAINT signing_keys_retire_after_activate
        CHECK (retires_at IS NULL OR activated_at IS NULL OR retires_at >= activated_at),
    CONSTRAINT signing_keys_expire_after_retire
        CHECK (expires_at IS NULL OR retires_at IS NULL OR expires_at >= retires_at)
);
COMMENT ON TABLE auth.signing_keys IS 'JWT signing keys (public part served to edges; private part sealed)';

-- ---------------------------------------------------------------------------
-- auth.refresh_tokens: rotating refresh tokens grouped in families (reuse => revoke family).
-- ---------------------------------------------------------------------------
CREATE TABLE auth.refresh_tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE,   -- sha256 of the opaque token
    family_id       uuid NOT NULL,
    user_id         text NOT NULL,
    parent_id       bigint,                  -- token this one was rotated from (same family)
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,             -- set when rotated; a second use is a reuse
    revoked_at      timestamptz,
    revoked_reason  text,
    user_agent      text,
    ip              inet
);
CREATE INDEX refresh_tokens_family_id_idx ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON auth.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON auth.refresh_tokens (expires_at);
COMMENT ON TABLE auth.refresh_tokens IS 'Refresh tokens; parent_id chains rotations within family_id';

-- ---------------------------------------------------------------------------
-- auth.login_attempts: failed-login throttling per key ('email:<lower email>' or 'ip:<addr>').
-- ---------------------------------------------------------------------------
CREATE TABLE auth.login_attempts (
    key                text PRIMARY KEY CHECK (key LIKE 'email:%' OR key LIKE 'ip:%'),
    failures           integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    window_started_at  timestamptz NOT NULL DEFAULT now(),
    locked_until       timestamptz,
    last_failure_at    timestamptz
);
CREATE INDEX login_attempts_window_idx ON auth.login_attempts (window_started_at);

-- ---------------------------------------------------------------------------
-- audit.security_events
-- ---------------------------------------------------------------------------
CREATE TABLE audit.security_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type  text NOT NULL,
    severity    text NOT NULL DEFAULT 'info',
    user_id     text,
    ip_address  inet,
    message     text,
    details     jsonb NOT NULL DEFAULT '{}',
    -- X-Request-ID is client-supplied or 'req_<epoch_ms>', not always a uuid: stored as text.
    request_id  text,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_events_created_at_idx ON audit.security_events (created_at DESC);
CREATE INDEX security_events_event_type_idx ON audit.security_events (event_type);
CREATE INDEX security_events_user_id_idx ON audit.security_events (user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX security_events_severity_idx ON audit.security_events (severity)
    WHERE severity IN ('warning', 'error', 'critical', 'high');
COMMENT ON TABLE audit.security_events IS 'Auth/security audit trail (auth_success, auth_failure, ...)';
