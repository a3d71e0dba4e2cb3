-- Plugins (contract §2.18): MCP servers (stdio or streamable HTTP) and declarative tools,
-- described by a manifest (gathering-plugin.json). The registry of plugins lives here so every
-- edge and executor serves the same ones; each process keeps its own MCP sessions and re-reads
-- this table when notified on channel plugins_changed. Owned by gathering-tools (plugins/).
CREATE TABLE agent.plugins (
    id            text PRIMARY KEY
                  CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,39}$' AND position('__' IN id) = 0),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    version       text NOT NULL DEFAULT '0.0.0',
    description   text NOT NULL DEFAULT '',
    author        text,
    license       text,
    homepage      text,
    tags          text[] NOT NULL DEFAULT '{}',
    kind          text NOT NULL CHECK (kind IN ('stdio', 'http', 'declarative')),
    -- Folder holding the manifest (inside GATHERING_PLUGIN_DIRS); NULL for POST /plugins/dynamic.
    source_dir    text,
    manifest      jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'unloaded'
                  CHECK (status IN ('unloaded', 'loaded', 'enabled', 'disabled', 'error')),
    error         text,
    config        jsonb NOT NULL DEFAULT '{}',
    -- The tools as the server listed them at load ([{name, description, input_schema, dangerous}]).
    tools         jsonb NOT NULL DEFAULT '[]',
    competencies  text[] NOT NULL DEFAULT '{}',
    -- Bumped by every change a process must act on (restart sessions, re-register tools).
    generation    bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plugins_set_updated_at BEFORE UPDATE ON agent.plugins
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
COMMENT ON TABLE agent.plugins IS 'Plugins (MCP servers, declarative tools): state shared by every process';

CREATE FUNCTION agent.plugins_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('plugins_changed', '');
    RETURN NULL;
END $$;
CREATE TRIGGER plugins_changed AFTER INSERT OR UPDATE OR DELETE ON agent.plugins
    FOR EACH STATEMENT EXECUTE FUNCTION agent.plugins_notify();
