-- Liveness of service instances. Executors and schedulers upsert their row every few seconds
-- (gathering_db::heartbeat) and delete it when they stop cleanly; an instance that dies stops
-- beating and counts as gone once its last beat is older than the liveness window. The edge's
-- GET /health/checks counts live instances per service from here.
CREATE TABLE public.service_heartbeats (
    service       text NOT NULL CHECK (service ~ '^[a-z][a-z0-9_-]{0,39}$'),
    instance      text NOT NULL CHECK (char_length(instance) BETWEEN 1 AND 200),
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, instance)
);
CREATE INDEX service_heartbeats_seen_idx ON public.service_heartbeats (service, last_seen_at DESC);
COMMENT ON TABLE public.service_heartbeats IS 'One row per running executor/scheduler instance, refreshed every few seconds';
